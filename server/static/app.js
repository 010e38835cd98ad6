// WaveNet playground: lists /v1/models, streams WS /v1/stream, plays the PCM through an
// AudioWorklet while it arrives, draws it, measures it, and offers it as a WAV file.
// `window.playground` exposes the state for tests and curious people.

import { LiveText } from "./live-text.js";
import { fileToBase64, wavBlob } from "./wav.js";
import { Waveform } from "./waveform.js";

const $ = (id) => document.getElementById(id);

const CLOSE_REASONS = {
  1001: "The server is shutting down.",
  1003: "The server refused a binary message.",
  1006: "The connection was lost (is the server running?).",
  1007: "The request was invalid.",
  1008: "Not authorized, or the message was out of protocol.",
  1009: "The request is too large for this server.",
  1011: "The server failed while generating.",
  1013: "The server is busy; try again in a moment.",
  4404: "Unknown model.",
  4408: "Dropped: the audio was not read quickly enough.",
  4410: "The mel came too slowly: it fell too far behind real time.",
  4429: "Too many streams from this client (or shed for others under load); retry later.",
};
const ERROR_TITLES = {
  unauthorized: "Unauthorized",
  overloaded: "Server busy (503)",
  shutting_down: "Server shutting down",
  model_loading: "Model still loading (503)",
  model_unavailable: "Model unavailable (503)",
  model_not_found: "Unknown model",
  invalid_request: "Invalid request",
  invalid_json: "Invalid request",
  message_too_large: "Request too large",
  text_unavailable: "Text not available",
  slow_consumer: "Too slow",
  generation_failed: "Server error",
  internal_error: "Server error",
};

const state = {
  status: "loading", // loading | idle | connecting | streaming | playing | done | cancelling | cancelled | error
  models: [],
  model: null,
  requestId: null,
  sampleRate: null, // the stream's rate (from "started")
  contextRate: null, // the AudioContext's rate (resampled in the worklet if different)
  contextState: null,
  expectedSamples: null, // num_samples from "started"
  samplesReceived: 0, // decoded from the binary frames
  workletReceived: 0, // as counted inside the AudioWorklet
  samplesPlayed: 0, // rendered by the AudioWorklet (source samples)
  underruns: 0,
  playbackEnded: false,
  ttfaMs: null, // client: start sent -> first audio frame
  rtf: null, // client: start sent -> last frame, over the audio's duration
  serverTtfaMs: null,
  serverRtf: null,
  done: null, // the server's done event
  closeCode: null,
  lastError: null, // {code, message, closeCode, text}
  streams: 0,
  live: false, // "type as you go": a text stream, sent as it is typed
  textSent: "", // the text sent so far in a live stream
  words: [], // {word, start, end} from the server's `words` events, in seconds
  wordNow: -1, // the index of the word being heard
};
window.playground = state;

const waveform = new Waveform($("wave"));
const live = new LiveText(state, $("text"), $("words"));
let session = null; // the stream in progress: {ws, ctx, node, gain, chunks, ...}
let latest = null; // the newest stream, finished or not: only it updates the counters
let currentContext = null; // only the newest AudioContext reports its state

// ------------------------------------------------------------------ display
function setStatus(status, text) {
  state.status = status;
  $("status").textContent = text;
  document.body.dataset.status = status;
  const active = session !== null && !["done", "cancelled", "error"].includes(status);
  $("start").disabled = active || !selectedModel();
  $("cancel").disabled = !active || status === "cancelling";
  $("end-text").disabled = !active || !state.live || Boolean(session?.textEnded);
}

function showError(error) {
  state.lastError = error;
  const box = $("error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = error.text;
  box.hidden = false;
}

function describeError(code, message, closeCode) {
  const title = ERROR_TITLES[code] || (code ? code.replace(/_/g, " ") : "Error");
  let text = `${title}: ${message || CLOSE_REASONS[closeCode] || "unknown error"}`;
  if (code === "unauthorized") text += " Enter the server's API key above.";
  if (closeCode) text += ` (close code ${closeCode})`;
  return { code, message, closeCode, text };
}

const fmt = (value, digits, unit = "") =>
  value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit}`;

function showStats() {
  const rate = state.sampleRate;
  const secs = (n) => (rate ? ` (${(n / rate).toFixed(2)} s)` : "");
  const expected = state.expectedSamples ? ` / ${state.expectedSamples}` : "";
  $("stat-samples").textContent = `${state.samplesReceived}${expected}${secs(state.samplesReceived)}`;
  const gaps = state.underruns ? `, ${state.underruns} underruns` : "";
  $("stat-played").textContent = `${state.samplesPlayed}${secs(state.samplesPlayed)}${gaps}`;
  $("stat-ttfa").textContent = fmt(state.ttfaMs, 1, " ms");
  $("stat-ttfa-server").textContent = fmt(state.serverTtfaMs, 1, " ms");
  $("stat-rtf").textContent = fmt(state.rtf, 3);
  $("stat-rtf-server").textContent = fmt(state.serverRtf, 3);
}

// ------------------------------------------------------------------ models
const apiKey = () => $("api-key").value.trim();
const selectedModel = () => state.models.find((m) => m.name === $("model").value && m.status === "ready");
const isMel = (m) => (m.conditioning || []).includes("mel");

async function loadModels() {
  const message = $("models-message");
  message.textContent = "Loading models…";
  message.classList.remove("error");
  const headers = apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};
  let data;
  try {
    const response = await fetch("/v1/models", { headers, cache: "no-store" });
    data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const err = data.error || {};
      const hint = response.status === 401
        ? "This server needs an API key: enter it in the API key field, then press Reload."
        : `${response.status}: ${err.message || response.statusText}`;
      throw new Error(hint);
    }
  } catch (exc) {
    state.models = [];
    renderModels();
    message.textContent = `Could not list the models. ${exc.message}`;
    message.classList.add("error");
    if (state.status === "loading") setStatus("idle", "Idle.");
    return;
  }
  state.models = data.data || [];
  renderModels();
  const ready = state.models.filter((m) => m.status === "ready").length;
  message.textContent = `${ready} of ${state.models.length} models ready.`;
  if (state.status === "loading") setStatus("idle", "Idle.");
  if (state.models.some((m) => m.status === "loading")) setTimeout(loadModels, 1000);
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderModels() {
  const table = $("models");
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const m of state.models) {
    const row = body.insertRow();
    row.dataset.model = m.name;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = m.name;
    row.append(name);
    cell(row, m.status, `model-${m.status}`);
    if (m.status !== "ready" && !m.sample_rate) {
      cell(row, m.error || "", "error model-error").colSpan = 4;
      continue;
    }
    cell(row, m.sample_rate ? `${m.sample_rate} Hz` : "–", "nowrap");
    cell(row, (m.conditioning || []).join(", ") || "none");
    const speakers = m.speakers?.length ? m.speakers.join(", ") : m.num_speakers ? `ids 0–${m.num_speakers - 1}` : "–";
    cell(row, speakers);
    cell(row, m.voices?.length ? m.voices.join(", ") : "–");
  }
  table.hidden = state.models.length === 0;

  const select = $("model");
  const previous = select.value;
  select.replaceChildren();
  for (const m of state.models) {
    const option = new Option(m.status === "ready" ? m.name : `${m.name} (${m.status})`, m.name);
    option.disabled = m.status !== "ready";
    select.append(option);
  }
  const keep = state.models.find((m) => m.name === previous && m.status === "ready");
  const first = state.models.find((m) => m.status === "ready");
  if (keep || first) select.value = (keep || first).name;
  onModelChange();
}

function onModelChange() {
  const m = selectedModel();
  state.model = m ? m.name : null;
  const speaker = $("speaker");
  const previous = speaker.value;
  speaker.replaceChildren();
  if (m?.speakers?.length) {
    m.speakers.forEach((name) => speaker.append(new Option(name, name)));
  } else if (m?.num_speakers) {
    for (let i = 0; i < m.num_speakers; i++) speaker.append(new Option(`speaker ${i}`, String(i)));
  } else {
    speaker.append(new Option("— (not multi-speaker)", ""));
  }
  if ([...speaker.options].some((o) => o.value === previous)) speaker.value = previous;
  speaker.disabled = !m?.num_speakers;

  const mel = Boolean(m && isMel(m));
  $("seconds-label").hidden = mel;
  $("mel-inputs").hidden = !mel;
  const voices = m?.voices || [];
  $("text-label").hidden = !voices.length;
  $("voice-label").hidden = !voices.length;
  $("live-label").hidden = !voices.length;
  const voice = $("voice");
  const previousVoice = voice.value;
  voice.replaceChildren(...voices.map((v) => new Option(v, v)));
  if (voices.includes(previousVoice)) voice.value = previousVoice;
  setStatus(state.status, $("status").textContent);
}

// ------------------------------------------------------------------ request
async function buildStart(m) {
  const msg = { type: "start", model: m.name, format: "pcm" };
  if (isMel(m) && m.voices?.length && $("live").checked) {
    // a text stream: the text follows as it is typed; its voice and seed set the audio
    msg.text_stream = true;
    msg.seed = Number($("seed").value) || 0;
    if ($("voice").value) msg.voice = $("voice").value;
    if (apiKey()) msg.api_key = apiKey();
    return msg;
  }
  const seed = Number($("seed").value);
  if (!Number.isInteger(seed) || seed < 0) throw new Error("Seed: use a whole number ≥ 0.");
  const temperature = Number($("temperature").value);
  if (!(temperature >= 0 && temperature <= 2)) throw new Error("Temperature: use a number from 0 to 2.");
  msg.seed = seed;
  msg.temperature = temperature;
  const speaker = $("speaker").value;
  if (m.num_speakers && speaker !== "") msg.speaker = m.speakers?.length ? speaker : Number(speaker);
  if (isMel(m)) {
    const file = $("audio-file").files[0];
    const text = $("text").value.trim();
    if (file) {
      msg.audio = await fileToBase64(file);
    } else if (m.voices?.length && text) {
      msg.text = text;
      if ($("voice").value) msg.voice = $("voice").value;
    } else {
      throw new Error(m.voices?.length ? "Type some text or choose a WAV file to resynthesize."
        : "Choose a WAV file to resynthesize (this server has no text synthesizer).");
    }
  } else {
    const seconds = Number($("seconds").value);
    if (!(seconds > 0)) throw new Error("Seconds: use a number above 0.");
    msg.seconds = seconds;
  }
  if (apiKey()) msg.api_key = apiKey();
  return msg;
}

function resetMeasurements() {
  Object.assign(state, {
    requestId: null, sampleRate: null, expectedSamples: null, samplesReceived: 0,
    workletReceived: 0, samplesPlayed: 0, underruns: 0, playbackEnded: false, ttfaMs: null,
    rtf: null, serverTtfaMs: null, serverRtf: null, done: null, closeCode: null,
    live: false, textSent: "", words: [], wordNow: -1,
  });
  live.reset();
  showError(null);
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.removeAttribute("href");
  link.hidden = true;
  showStats();
}

// The context is made (and resumed) inside the click, before anything is awaited, so
// autoplay rules allow it to start. It asks for the model's rate; a browser that refuses
// that rate gets its own, and the worklet resamples.
// `?context_rate=44100` forces the context's rate (to hear or test the resampler).
const forcedRate = Number(new URLSearchParams(location.search).get("context_rate")) || null;

function createContext(rate) {
  let ctx;
  try {
    ctx = new AudioContext({ sampleRate: forcedRate || rate, latencyHint: "interactive" });
  } catch {
    ctx = new AudioContext({ latencyHint: "interactive" });
  }
  currentContext = ctx;
  ctx.onstatechange = () => {
    if (ctx === currentContext) state.contextState = ctx.state;
  };
  ctx.resume();
  state.contextRate = ctx.sampleRate;
  state.contextState = ctx.state;
  return ctx;
}

async function addPlayer(ctx, rate) {
  await ctx.audioWorklet.addModule("/static/pcm-player.js");
  const node = new AudioWorkletNode(ctx, "pcm-player", {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
    processorOptions: { sourceRate: rate },
  });
  const gain = new GainNode(ctx, { gain: 1 });
  node.connect(gain).connect(ctx.destination);
  await ctx.resume();
  state.contextState = ctx.state;
  return { node, gain };
}

async function start(event) {
  event.preventDefault();
  if (session) return;
  const m = selectedModel();
  if (!m) return;
  resetMeasurements();
  const s = { chunks: [], carry: null, sentAt: 0, cancelled: false, finished: false, error: null };
  session = s;
  latest = s;
  state.streams++;
  setStatus("connecting", "Preparing…");
  let msg;
  try {
    s.ctx = createContext(m.sample_rate); // first, while the click still counts
    msg = await buildStart(m);
    Object.assign(s, await addPlayer(s.ctx, m.sample_rate));
  } catch (exc) {
    if (session === s) session = null;
    closeAudio(s);
    const text = exc instanceof DOMException ? `Audio output unavailable: ${exc.message}` : exc.message;
    showError({ code: "client", message: exc.message, closeCode: null, text });
    setStatus("error", "Not started.");
    return;
  }
  if (session !== s) return; // cancelled while preparing
  setStatus("connecting", "Connecting…");
  s.node.port.onmessage = (e) => onWorklet(s, e.data);
  waveform.reset(1);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  ws.binaryType = "arraybuffer";
  s.ws = ws;
  ws.onopen = () => {
    s.sentAt = performance.now();
    ws.send(JSON.stringify(msg));
    if (msg.text_stream) {
      state.live = true;
      live.send(s);
      setStatus(state.status, $("status").textContent);
    }
  };
  ws.onmessage = (e) => {
    if (session !== s) return;
    if (typeof e.data === "string") onEvent(s, JSON.parse(e.data));
    else onAudio(s, e.data);
  };
  ws.onclose = (e) => onClose(s, e.code);
}

function onEvent(s, ev) {
  if (ev.type === "started") {
    state.requestId = ev.request_id;
    state.sampleRate = ev.sample_rate;
    state.expectedSamples = ev.num_samples;
    s.rate = ev.sample_rate;
    s.node.port.postMessage({ type: "rate", sourceRate: ev.sample_rate });
    waveform.reset(ev.num_samples ?? 30 * ev.sample_rate);
    setStatus("streaming", ev.num_samples === null ? `Speaking as you type, with ${ev.model}…`
      : `Streaming ${(ev.num_samples / ev.sample_rate).toFixed(2)} s from ${ev.model}…`);
  } else if (ev.type === "done") {
    state.done = ev;
    state.serverTtfaMs = ev.time_to_first_audio_ms;
    state.serverRtf = ev.real_time_factor;
    if (state.samplesReceived && s.sentAt) {
      state.rtf = (s.lastAudioAt - s.sentAt) / 1000 / (state.samplesReceived / s.rate);
    }
    s.finished = true;
    offerDownload(s, ev.status !== "done");
    if (ev.status === "done" && !s.cancelled) {
      s.node.port.postMessage({ type: "end" });
      setStatus("playing", `Received ${ev.seconds.toFixed(2)} s; playing…`);
    } else {
      stopAudio(s);
      setStatus("cancelled", `Cancelled after ${(state.samplesReceived / s.rate).toFixed(2)} s of audio.`);
    }
  } else if (ev.type === "error") {
    s.error = ev;
  } else if (ev.type === "words") {
    live.addWords(ev.words);
  }
  showStats();
}

function onAudio(s, buffer) {
  const now = performance.now();
  if (state.ttfaMs === null) state.ttfaMs = Math.round((now - s.sentAt) * 10) / 10;
  s.lastAudioAt = now;
  let bytes = new Uint8Array(buffer);
  if (s.carry !== null) {
    const joined = new Uint8Array(bytes.length + 1);
    joined[0] = s.carry;
    joined.set(bytes, 1);
    bytes = joined;
    s.carry = null;
  }
  if (bytes.length % 2) {
    s.carry = bytes[bytes.length - 1];
    bytes = bytes.subarray(0, bytes.length - 1);
  }
  const pcm = new Int16Array(bytes.slice().buffer); // s16le; a copy keeps it aligned
  const floats = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i] / 32768;
  s.chunks.push(pcm);
  state.samplesReceived += pcm.length;
  waveform.add(floats);
  if (!s.cancelled) s.node.port.postMessage({ type: "pcm", samples: floats });
  showStats();
}

function onWorklet(s, msg) {
  if (s !== latest) return;
  state.workletReceived = msg.received;
  state.samplesPlayed = msg.played;
  state.underruns = msg.underruns;
  waveform.setPlayed(msg.played);
  if (s.rate) live.highlight(msg.played / s.rate);
  if (msg.type === "drained" && !s.cancelled) {
    state.playbackEnded = true;
    closeAudio(s);
    if (session === s) session = null;
    const d = state.done;
    setStatus("done", `Done: ${d.samples} samples (${d.seconds.toFixed(2)} s) played.`);
  }
  showStats();
}

function onClose(s, code) {
  if (session !== s) return;
  state.closeCode = code;
  if (s.error || (!s.finished && !s.cancelled)) {
    const e = s.error || {};
    showError(describeError(e.code, e.message, code));
    stopAudio(s);
    offerDownload(s, true);
    setStatus("error", "Stopped by an error.");
  } else if (s.cancelled && !s.finished) {
    stopAudio(s);
    setStatus("cancelled", "Cancelled.");
  }
  // a finished stream keeps playing; the worklet's "drained" ends the session
  if (state.status !== "playing") session = null;
  setStatus(state.status, $("status").textContent);
}

function cancel() {
  const s = session;
  if (!s) return;
  s.cancelled = true;
  if (s.ws && s.ws.readyState === WebSocket.OPEN && !s.finished) {
    s.ws.send(JSON.stringify({ type: "cancel" }));
    setStatus("cancelling", "Cancelling…");
    stopAudio(s);
  } else {
    stopAudio(s);
    session = null;
    setStatus("cancelled", "Playback stopped.");
  }
}

// fade out over ~30 ms (no click), then stop the worklet and release the device
function stopAudio(s) {
  if (!s.ctx || s.stopping) return;
  s.stopping = true;
  if (!s.gain) {
    closeAudio(s);
    return;
  }
  const t = s.ctx.currentTime;
  s.gain.gain.setValueAtTime(s.gain.gain.value, t);
  s.gain.gain.linearRampToValueAtTime(0, t + 0.03);
  setTimeout(() => {
    s.node.port.postMessage({ type: "stop" });
    setTimeout(() => closeAudio(s), 50);
  }, 40);
}

function closeAudio(s) {
  if (s.ctx && s.ctx.state !== "closed") {
    s.ctx.close().then(() => {
      if (s.ctx === currentContext) state.contextState = "closed";
    }, () => {});
  }
}

function offerDownload(s, partial) {
  if (!state.samplesReceived) return;
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(wavBlob(s.chunks, s.rate));
  link.download = `wavenet-${state.model}-${state.requestId || "audio"}.wav`;
  link.textContent = partial ? "Download WAV (partial)" : "Download WAV";
  link.hidden = false;
}

// ------------------------------------------------------------------ wiring
$("request").addEventListener("submit", start);
$("cancel").addEventListener("click", cancel);
$("end-text").addEventListener("click", () => {
  if (session && state.live && !session.textEnded) live.end(session);
  setStatus(state.status, $("status").textContent);
});
$("text").addEventListener("input", () => { if (session && state.live) live.send(session); });
$("live").addEventListener("change", () => {
  $("end-text").hidden = !$("live").checked;
  $("text").maxLength = $("live").checked ? 4096 : 600; // the server's input limit, or /v1/synthesize's
});
$("model").addEventListener("change", onModelChange);
$("reload").addEventListener("click", loadModels);
$("api-key").addEventListener("change", loadModels);
$("audio-file").addEventListener("change", () => {
  $("text").disabled = $("audio-file").files.length > 0;
});
showStats();
loadModels();
