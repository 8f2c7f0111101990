// Inline SVG icons (24x24, currentColor), drawn for rtchub.

const svg = (body) => `<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" fill="currentColor">${body}</svg>`;
const slash = '<path d="M4 3.5 20.5 20" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>';
const micBody = '<rect x="9" y="2.5" width="6" height="12" rx="3"/>'
  + '<path d="M6 11a6 6 0 0 0 12 0" fill="none" stroke="currentColor" stroke-width="2"/>'
  + '<path d="M12 17v4M8.5 21h7" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>';
const camBody = '<rect x="2.5" y="6" width="13" height="12" rx="2.5"/><path d="M16.5 10.5 21.5 7v10l-5-3.5z"/>';

export const icons = {
  mic: svg(micBody),
  micOff: svg(micBody + slash),
  cam: svg(camBody),
  camOff: svg(camBody + slash),
  screen: svg('<rect x="2.5" y="4" width="19" height="13" rx="2" fill="none" stroke="currentColor" stroke-width="2"/>'
    + '<path d="M8 21h8M12 17v4M12 7.5v6M9.3 10.2 12 7.5l2.7 2.7" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>'),
  record: svg('<circle cx="12" cy="12" r="8.5" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="12" cy="12" r="4.5"/>'),
  chat: svg('<path d="M4 4.5h16a1.5 1.5 0 0 1 1.5 1.5v9.5A1.5 1.5 0 0 1 20 17H9l-4.5 3.5V17H4a1.5 1.5 0 0 1-1.5-1.5V6A1.5 1.5 0 0 1 4 4.5z"/>'),
  people: svg('<circle cx="9" cy="8" r="3.5"/><path d="M2.5 19.5c.6-3.6 3.2-5.5 6.5-5.5s5.9 1.9 6.5 5.5z"/>'
    + '<circle cx="17" cy="9" r="2.6"/><path d="M16.6 13.6c2.6 0 4.4 1.6 4.9 4.4h-4.3a7.3 7.3 0 0 0-1.9-4.3z"/>'),
  leave: svg('<path d="M2.2 14.6c5.4-5.2 14.2-5.2 19.6 0l-2.6 2.6-3.6-1.6v-3c-2.4-.9-4.8-.9-7.2 0v3l-3.6 1.6z"/>'),
  gear: svg('<path d="M10.3 2.5h3.4l.5 2.6 1.7.9 2.5-1 1.7 2.9-2 1.7v2l2 1.7-1.7 2.9-2.5-1-1.7.9-.5 2.6h-3.4l-.5-2.6-1.7-.9-2.5 1-1.7-2.9 2-1.7v-2l-2-1.7 1.7-2.9 2.5 1 1.7-.9z" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/>'
    + '<circle cx="12" cy="12" r="3" fill="none" stroke="currentColor" stroke-width="1.8"/>'),
  link: svg('<path d="M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>'),
};
