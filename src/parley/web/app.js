// The talk page: microphone -> Realtime WebSocket (GA dialect) -> live transcript, spoken answer, latency, usage.
//
// Page address parameters preset the session: ?voice=ash&turn_detection=semantic_vad&instructions=...
// &max_output_tokens=60

const RATE = 24000;
const SAMPLES_PER_MS = RATE / 1000;
// "If this were OpenAI": gpt-4o-mini-realtime-preview list prices, dollars per 1M tokens.
const PRICES = { textIn: 0.6, textCached: 0.3, textOut: 2.4, audioIn: 10, audioCached: 0.3, audioOut: 20 };
const SENT_LOG_ENTRIES = 3000; // two minutes of 40 ms chunks: enough to place any turn's end in time

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

const state = {
  keyRequired: false,
  ws: null,
  opened: false,
  stopping: false,
  audio: null, // {context, stream, capture, playback}
  sentMs: 0,
  sentLog: [], // [audio ms at the end of a chunk, performance.now() when it was sent]
  userTurns: new Map(), // item id -> {li, endAt}
  responses: new Map(), // response id -> {li, endAt, firstAudioAt, interrupted}
  lastEndAt: null, // when the caller's latest turn ended, on this page's clock
  playingItem: null, // assistant item whose audio is queued or playing
  playingResponse: null,
  heard: {}, // assistant item id -> samples played
  usage: { inText: 0, inAudio: 0, inCached: 0, outText: 0, outAudio: 0 },
};

// What tests and curious users can read from the console.
window.parley = { playedSamples: 0, sentMs: 0, latenciesMs: [], errors: [], state };

// Start-up: is the server there, ready, and does it want a key? ------------------------------------------

async function probe() {
  try {
    const [ready, models] = await Promise.all([fetch("/readyz"), fetch("/v1/models")]);
    state.keyRequired = models.status === 401;
    $("key-field").hidden = !state.keyRequired;
    if (ready.ok) {
      setStatus("ready");
      $("start").disabled = false;
      return;
    }
    const body = await ready.json();
    if (body.status === "failed") {
      setStatus("failed to load", "bad");
      showNotice(`The server could not load its models: ${body.error}`);
      return;
    }
    setStatus("loading models…");
  } catch {
    setStatus("server unreachable", "bad");
  }
  setTimeout(probe, 2000);
}

function presetFromAddress() {
  if (query.has("voice")) $("voice").value = query.get("voice");
  if (query.has("turn_detection")) $("turn-detection").value = query.get("turn_detection");
  if (query.has("instructions")) $("instructions").value = query.get("instructions");
}

// Session settings ----------------------------------------------------------------------------------------

function sessionSettings() {
  const pcm = { type: "audio/pcm", rate: RATE };
  const session = {
    type: "realtime",
    output_modalities: ["audio"],
    audio: {
      input: {
        format: pcm,
        transcription: { model: "whisper-1" },
        turn_detection: { type: $("turn-detection").value },
      },
      output: { format: pcm, voice: $("voice").value },
    },
  };
  const instructions = $("instructions").value.trim();
  if (instructions) session.instructions = instructions;
  if (query.has("max_output_tokens")) session.max_output_tokens = Number(query.get("max_output_tokens"));
  return session;
}

function showSession(session) {
  const tools = session.tools || [];
  $("tools").textContent = tools.length
    ? `on: ${tools.map((t) => t.name || t.type).join(", ")} (choice: ${JSON.stringify(session.tool_choice)})`
    : "off (none configured)";
  $("model").textContent = session.model || "–";
  $("session-id").textContent = session.id || "–";
  const output = session.audio?.output || {};
  if (output.voice) $("voice").value = typeof output.voice === "string" ? output.voice : output.voice.id;
  const detection = session.audio?.input?.turn_detection;
  if (detection) $("turn-detection").value = detection.type;
  if (!$("instructions").value && session.instructions) $("instructions").value = session.instructions;
}

function settingsChanged() {
  if (state.opened) send({ type: "session.update", session: sessionSettings() });
}

// Starting and stopping -----------------------------------------------------------------------------------

async function start() {
  clearNotice();
  $("start").disabled = true;
  state.stopping = false;
  try {
    await startAudio();
    const secret = state.keyRequired ? await mintClientSecret() : null;
    connect(secret);
  } catch (err) {
    showNotice(err.message);
    await stop();
  }
}

async function stop() {
  state.stopping = true;
  if (state.ws) {
    state.ws.close(1000);
    state.ws = null;
  }
  state.opened = false;
  if (state.audio) {
    state.audio.stream.getTracks().forEach((track) => track.stop());
    await state.audio.context.close();
    state.audio = null;
  }
  $("meter").firstElementChild.style.width = "0";
  $("start").textContent = "Start";
  $("start").classList.remove("stop");
  $("start").disabled = false;
  if (!$("status").classList.contains("bad")) setStatus("ready");
}

async function startAudio() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser allows the microphone only on https:// pages or on http://localhost.");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    throw new Error(microphoneProblem(err));
  }
  // The context runs at the API's rate, so the browser resamples the microphone and the answer for us.
  const context = new AudioContext({ sampleRate: RATE });
  await context.audioWorklet.addModule("audio-worklet.js");
  const capture = new AudioWorkletNode(context, "parley-capture");
  const playback = new AudioWorkletNode(context, "parley-playback");
  try {
    context.createMediaStreamSource(stream).connect(capture);
  } catch (err) {
    stream.getTracks().forEach((track) => track.stop());
    await context.close();
    // Some browsers cannot feed a microphone into a context whose rate differs from the device's.
    throw new Error(`This browser cannot record the microphone at 24 kHz (${err.message}); try Chrome or Edge.`);
  }
  playback.connect(context.destination);
  capture.port.onmessage = (event) => sendAudio(event.data);
  playback.port.onmessage = (event) => playbackReport(event.data);
  await context.resume();
  state.audio = { context, stream, capture, playback };
}

function microphoneProblem(err) {
  switch (err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow it for this page (the icon at the left of the address bar) and press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one and press Start again.";
    case "NotReadableError":
      return "The microphone could not be opened: another application may be using it.";
    default:
      return `The microphone could not be started: ${err.message || err.name}`;
  }
}

async function mintClientSecret() {
  const key = $("api-key").value.trim();
  if (!key) throw new Error("This server requires an API key: enter it next to the Start button.");
  let response;
  try {
    response = await fetch("/v1/realtime/client_secrets", {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ session: sessionSettings() }),
    });
  } catch {
    throw new Error("The server could not be reached.");
  }
  if (response.status === 401) throw new Error("The server refused this API key.");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`No session key: ${body.error?.message || response.statusText}`);
  return body.value;
}

function connect(secret) {
  const url = new URL("/v1/realtime", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("model", "gpt-realtime");
  url.searchParams.set("parley_language", "true"); // opt-in: transcripts name the language heard
  url.searchParams.set("parley_timings", "true"); // opt-in: the server's own per-turn stage timings
  const protocols = ["realtime"];
  if (secret) protocols.push(`openai-insecure-api-key.${secret}`);
  setStatus("connecting…");
  const ws = new WebSocket(url, protocols);
  state.ws = ws;
  state.sentMs = 0;
  state.sentLog = [];
  ws.onopen = () => {
    state.opened = true;
    setStatus("listening", "live");
    $("start").textContent = "Stop";
    $("start").classList.add("stop");
    $("start").disabled = false;
    send({ type: "session.update", session: sessionSettings() });
  };
  ws.onmessage = (message) => handle(JSON.parse(message.data));
  ws.onclose = (event) => {
    if (ws !== state.ws && state.stopping) return;
    if (!state.opened) {
      showNotice(
        state.keyRequired
          ? "Could not connect: the session key was refused or the server is not ready."
          : "Could not connect to the server's WebSocket: is it running and ready?",
      );
    } else if (!state.stopping) {
      const why = event.reason ? `: ${event.reason}` : "";
      appendNotice(`The connection closed (code ${event.code}${why}). Press Start to talk again.`);
    }
    state.ws = null;
    stop();
  };
}

function send(event) {
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(event));
}

// Microphone out ------------------------------------------------------------------------------------------

function sendAudio(buffer) {
  showLevel(new Int16Array(buffer));
  if (!state.opened) return; // audio time starts with the first chunk the server receives
  send({ type: "input_audio_buffer.append", audio: toBase64(buffer) });
  state.sentMs += buffer.byteLength / 2 / SAMPLES_PER_MS;
  window.parley.sentMs = state.sentMs;
  state.sentLog.push([state.sentMs, performance.now()]);
  if (state.sentLog.length > SENT_LOG_ENTRIES) state.sentLog.shift();
}

// When the caller's audio at ``audioMs`` (session audio time) left this page.
function sentAt(audioMs) {
  const entry = state.sentLog.find(([endMs]) => endMs >= audioMs);
  return entry ? entry[1] - (entry[0] - audioMs) : performance.now();
}

function showLevel(samples) {
  let sum = 0;
  for (const s of samples) sum += s * s;
  const rms = Math.sqrt(sum / samples.length) / 32768;
  $("meter").firstElementChild.style.width = `${Math.min(100, rms * 400)}%`;
}

// Server events -------------------------------------------------------------------------------------------

function handle(event) {
  switch (event.type) {
    case "session.created":
    case "session.updated":
      showSession(event.session);
      break;
    case "input_audio_buffer.speech_started":
      bargeIn();
      userTurn(event.item_id);
      setStatus("hearing you", "live");
      break;
    case "input_audio_buffer.speech_stopped":
      state.lastEndAt = sentAt(event.audio_end_ms);
      userTurn(event.item_id).endAt = state.lastEndAt;
      setStatus("thinking", "live");
      break;
    case "input_audio_buffer.committed":
      userTurn(event.item_id);
      break;
    case "conversation.item.input_audio_transcription.completed":
      userTurnText(event.item_id, event.transcript.trim() || "(nothing recognised)", event.language);
      break;
    case "conversation.item.input_audio_transcription.failed":
      userTurnText(event.item_id, "(could not be transcribed)");
      break;
    case "response.created":
      state.responses.set(event.response.id, { li: addTurn("parley"), endAt: state.lastEndAt });
      break;
    case "response.output_audio_transcript.delta":
    case "response.output_text.delta":
      appendAnswer(event.response_id, event.delta);
      break;
    case "response.output_audio.delta":
      answerAudio(event);
      break;
    case "response.done":
      responseDone(event.response);
      break;
    case "parley.turn.timings":
      showServerTimings(event);
      break;
    case "error":
      window.parley.errors.push(event.error);
      appendNotice(`Server error: ${event.error.message}`);
      break;
  }
}

function addTurn(who) {
  const li = document.createElement("li");
  li.className = who;
  li.innerHTML = `<span class="who">${who === "you" ? "You" : "Parley"}</span><span class="text"></span><span class="meta"></span>`;
  $("turns").append(li);
  $("hint").hidden = true;
  li.scrollIntoView({ block: "end", behavior: "smooth" });
  return li;
}

function userTurn(itemId) {
  if (!state.userTurns.has(itemId)) state.userTurns.set(itemId, { li: addTurn("you"), endAt: null });
  return state.userTurns.get(itemId);
}

function userTurnText(itemId, text, language) {
  const { li } = userTurn(itemId);
  li.querySelector(".text").textContent = text;
  if (language) li.querySelector(".meta").textContent = `language: ${language}`;
}

function appendAnswer(responseId, delta) {
  const turn = state.responses.get(responseId);
  if (!turn) return;
  const text = turn.li.querySelector(".text");
  text.textContent = (text.textContent + delta).replace(/^\s+/, "");
}

function answerAudio(event) {
  const turn = state.responses.get(event.response_id);
  if (!turn || turn.interrupted || !state.audio) return; // audio still in flight after a barge-in is dropped
  if (turn.firstAudioAt === undefined) {
    turn.firstAudioAt = performance.now();
    if (turn.endAt !== null) {
      const latency = Math.round(turn.firstAudioAt - turn.endAt);
      turn.latencyMs = latency;
      window.parley.latenciesMs.push(latency);
      showTurnMeta(turn);
    }
    setStatus("speaking", "live");
  }
  const pcm = new Int16Array(fromBase64(event.delta));
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
  state.playingItem = event.item_id;
  state.playingResponse = event.response_id;
  state.audio.playback.port.postMessage({ type: "push", item: event.item_id, samples }, [samples.buffer]);
}

function showServerTimings(event) {
  const turn = state.responses.get(event.response_id);
  if (!turn) return;
  turn.stages = event.stages_ms;
  showTurnMeta(turn);
}

function showTurnMeta(turn) {
  const parts = [];
  if (turn.latencyMs !== undefined) parts.push(`voice-to-voice ${turn.latencyMs} ms`);
  if (turn.stages) {
    const names = { turn_detected: "turn", transcript: "transcript", llm_first_token: "first token", first_audio: "first audio" };
    const split = Object.entries(names)
      .filter(([key]) => turn.stages[key] != null)
      .map(([key, name]) => `${name} ${Math.round(turn.stages[key])}`);
    if (split.length) parts.push(`server: ${split.join(" · ")} ms`);
  }
  turn.li.querySelector(".meta").textContent = parts.join(" — ");
}

// Barge-in: the caller spoke over the answer. Stop playing it at once and tell the server how much was heard,
// so the conversation keeps only those words (the server cancels the response itself).
function bargeIn() {
  const item = state.playingItem;
  if (!item || !state.audio) return;
  const turn = state.responses.get(state.playingResponse);
  if (turn) turn.interrupted = true;
  state.audio.playback.port.postMessage({ type: "clear" });
  send({
    type: "conversation.item.truncate",
    item_id: item,
    content_index: 0,
    audio_end_ms: Math.floor((state.heard[item] || 0) / SAMPLES_PER_MS),
  });
  state.playingItem = null;
}

function playbackReport({ played, drained }) {
  state.heard = { ...state.heard, ...played };
  window.parley.playedSamples = Object.values(state.heard).reduce((a, b) => a + b, 0);
  if (drained) {
    state.playingItem = null;
    if (state.opened) setStatus("listening", "live");
  }
}

function responseDone(response) {
  const turn = state.responses.get(response.id);
  if (turn && response.status === "cancelled") turn.li.classList.add("interrupted");
  if (turn && response.status === "incomplete") {
    turn.li.querySelector(".text").textContent += " …";
  }
  if (response.status === "failed") {
    appendNotice(`The answer failed: ${response.status_details?.error?.message || "unknown error"}`);
  }
  if (response.usage) addUsage(response.usage);
}

function addUsage(usage) {
  const input = usage.input_token_details || {};
  const output = usage.output_token_details || {};
  const u = state.usage;
  u.inText += input.text_tokens || 0;
  u.inAudio += input.audio_tokens || 0;
  u.inCached += input.cached_tokens || 0;
  u.outText += output.text_tokens || 0;
  u.outAudio += output.audio_tokens || 0;
  $("in-text").textContent = u.inText.toLocaleString();
  $("in-audio").textContent = u.inAudio.toLocaleString();
  $("in-cached").textContent = u.inCached.toLocaleString();
  $("out-text").textContent = u.outText.toLocaleString();
  $("out-audio").textContent = u.outAudio.toLocaleString();
  const dollars =
    ((u.inText - u.inCached) * PRICES.textIn +
      u.inCached * PRICES.textCached +
      u.inAudio * PRICES.audioIn +
      u.outText * PRICES.textOut +
      u.outAudio * PRICES.audioOut) /
    1e6;
  $("cost").textContent = `$${dollars.toFixed(4)}`;
}

// Small helpers -------------------------------------------------------------------------------------------

function setStatus(text, kind = "") {
  $("status").textContent = text;
  $("status").className = `pill ${kind}`;
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function appendNotice(text) {
  if ($("notice").hidden) showNotice(text);
  else $("notice").textContent += ` ${text}`;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice").textContent = "";
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length & ~1); // whole pcm16 samples only
  for (let i = 0; i < bytes.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

$("start").addEventListener("click", () => (state.opened || state.ws ? stop() : start()));
for (const id of ["voice", "turn-detection", "instructions"]) $(id).addEventListener("change", settingsChanged);
presetFromAddress();
probe();
