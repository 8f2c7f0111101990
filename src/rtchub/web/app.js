// rtchub browser app (placeholder until the call UI lands).
document.querySelector("#app p").textContent = "Server is up.";
