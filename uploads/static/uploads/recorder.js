// Recording the spoken description with the microphone: MediaRecorder for the sound, a Web
// Audio AnalyserNode for a live level meter, so the speaker sees the phone hears them.

// In the order we prefer them; every one is a type the portal accepts (parameters are dropped).
const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];

/** True when this browser can record audio here (a secure context with a microphone API). */
export function recordingSupported() {
  return Boolean(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/**
 * Starts recording from the microphone (the browser asks for permission first).
 * @param {{onLevel?: (level: number) => void}} [options]  `level` is 0..1, about 30 times a second
 * @returns {Promise<{stop: () => Promise<Blob>, cancel: () => void, startedAt: number}>}
 *   stop() resolves with the recording; cancel() throws it away. Both release the microphone.
 */
export async function startRecording({ onLevel = () => {} } = {}) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
  const chunks = [];
  recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data);

  const audio = new AudioContext();
  const analyser = audio.createAnalyser();
  analyser.fftSize = 1024;
  audio.createMediaStreamSource(stream).connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  let frame = 0;
  const measure = () => {
    analyser.getByteTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += ((sample - 128) / 128) ** 2;
    // RMS of speech sits around 0.05-0.3; scale so normal speech fills most of the meter.
    onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
    frame = requestAnimationFrame(measure);
  };
  measure();

  const release = () => {
    cancelAnimationFrame(frame);
    stream.getTracks().forEach((track) => track.stop());
    audio.close().catch(() => {});
    onLevel(0);
  };
  recorder.start(1000); // a chunk a second, so stop() has little left to flush
  return {
    startedAt: Date.now(),
    stop: () =>
      new Promise((resolve) => {
        recorder.onstop = () => {
          release();
          resolve(new Blob(chunks, { type: (recorder.mimeType || mimeType || "audio/webm").split(";")[0] }));
        };
        recorder.stop();
      }),
    cancel: () => {
      recorder.onstop = release;
      if (recorder.state !== "inactive") recorder.stop();
      else release();
    },
  };
}
