// A sound level meter shared by the pages: WebAudio measures how loud a stream's audio
// is, ten times a second (timers, not animation frames, so it also runs in a tab that
// is not in front), and writes it to an element as the CSS variable --level (0..1) and
// as data-level. The look is .meter in ui.css.

const shared = { ctx: null, running: 0 };

function audioContext() {
  if (!shared.ctx) {
    shared.ctx = new AudioContext();
    // an AudioContext made before any click starts suspended: the first gesture resumes it
    const resume = () => { if (shared.ctx.state === 'suspended') shared.ctx.resume().catch(() => {}); };
    for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, resume, { capture: true });
  }
  return shared.ctx;
}

/** Loudness of a block of samples on a 0..1 scale (-60 dBFS..0 dBFS). */
export function levelOf(samples) {
  let sum = 0;
  for (const x of samples) sum += x * x;
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  const db = 20 * Math.log10(rms || 1e-9);
  return Math.min(1, Math.max(0, (db + 60) / 60));
}

/**
 * Show the level of `stream`'s audio in `el` until the returned function is called.
 * Returns a no-op when the stream has no audio (the meter then reads 0).
 */
export function meter(el, stream) {
  const show = (level) => {
    el.style.setProperty('--level', level.toFixed(3));
    el.dataset.level = level.toFixed(2);
  };
  show(0);
  if (!stream || !stream.getAudioTracks().length || typeof AudioContext === 'undefined') {
    return () => {};
  }
  const ctx = audioContext();
  shared.running += 1;
  if (ctx.state === 'suspended' && shared.running === 1) ctx.resume().catch(() => {});
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let shown = 0;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    const now = levelOf(samples);
    shown = now > shown ? now : Math.max(now, shown - 0.08); // quick to rise, slow to fall
    show(shown);
  }, 100);
  return () => {
    clearInterval(timer);
    source.disconnect();
    show(0);
    shared.running -= 1;
    // no meter on screen: let the audio thread rest (phones keep their battery)
    if (shared.running === 0 && ctx.state === 'running') ctx.suspend().catch(() => {});
  };
}
