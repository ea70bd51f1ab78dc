// recfw room page: camera + microphone over WebRTC, recording status and host controls.
// Topology (docs/rooms.md): one RTCPeerConnection, to the server. It carries our camera
// and microphone up, and N "slots" (video + audio) down: the server forwards each other
// participant's encoded media (never re-encoded) into one of our slots. The camera is
// captured at the server's size (welcome.video, 1280x720 at up to 30 fps by default).
// No STUN/TURN servers are configured. When our media stops (the server says
// "media_lost", or the connection fails here) the page makes a new RTCPeerConnection
// on the same WebSocket (aiortc cannot restart ICE): same participant, same tiles.
// With the Janus backend (welcome.backend === "janus") the media goes through a Janus
// VideoRoom instead: one connection UP (camera + mic, the camera in 3 simulcast layers)
// and one connection DOWN (Janus's multistream subscription to everyone else, whose
// offers the server relays as "subscribe_offer"; we answer with "subscribe_answer").
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const room = decodeURIComponent(location.pathname.replace(/^\/+|\/+$/g, ""));
  const roomKey = params.get("roomKey");
  const embed = params.get("embed") === "1";
  const displayName = params.get("name") || "";
  const $ = (id) => document.getElementById(id);

  const state = {
    id: null, role: null, trigger: null, recording: "idle", prompt: false,
    loopbackOnly: false, ws: null, local: null, server: null, video: null,
    backend: "builtin", sub: null,  // janus: the subscription's connection
    mids: new Map(),   // janus: mid -> peer {id, name, role} of the subscription's m-lines
    peers: new Map(),  // id -> {name, role}
    slots: [],         // index -> {video: RTCRtpTransceiver, audio: RTCRtpTransceiver, peer}
    lastEmbedStatus: null, pending: [],
    nslots: 0, reconnects: 0, reconnecting: false,
    peersReconnecting: new Set(),  // ids whose media stopped (server's peer_media)
    mediaLog: [],  // [{id, state, at}]: peer_media and our own media_lost, in order
  };
  window.recfwState = state;  // for tests and debugging

  // --- SDP helpers ---------------------------------------------------------------
  function candidateAllowed(line) {
    const parts = line.split(" ");
    if (parts.length < 6) return true;
    const address = parts[4];
    if (address.endsWith(".local")) return false;
    if (!state.loopbackOnly) return true;
    return address === "::1" || /^127\./.test(address);
  }
  function filterSdp(sdp) {
    return sdp.split(/\r?\n/).filter((l) => !(l.startsWith("a=candidate:") && !candidateAllowed(l.slice(2))))
      .join("\r\n");
  }
  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);  // never wait forever for a slow interface
    });
  }
  function newPc() { return new RTCPeerConnection({ iceServers: [] }); }

  // --- signalling -------------------------------------------------------------------
  function send(msg) { state.ws.send(JSON.stringify(msg)); }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/${encodeURIComponent(room)}/ws`);
    state.ws = ws;
    ws.onopen = () => send({ type: "join", name: displayName, roomKey: roomKey || undefined });
    // One message at a time: a subscription offer is answered before the next is read.
    let chain = Promise.resolve();
    ws.onmessage = (ev) => {
      chain = chain.then(() => onMessage(JSON.parse(ev.data))).catch((err) => console.error("recfw:", err));
    };
    ws.onclose = () => { setStatusText("disconnected"); };
  }

  async function onMessage(msg) {
    switch (msg.type) {
      case "welcome":
        state.id = msg.id; state.role = msg.role; state.trigger = msg.trigger;
        state.loopbackOnly = !!msg.loopbackOnly;
        $("role").textContent = msg.role;
        document.body.dataset.role = msg.role;
        document.body.dataset.participantId = msg.id;
        for (const peer of msg.peers) state.peers.set(peer.id, { name: peer.name, role: peer.role });
        for (const id of msg.reconnecting || []) state.peersReconnecting.add(id);
        applyStatus(msg.recording, msg.prompt);
        await openCamera(msg.video || {});
        addTile(state.id, (displayName || "You") + " (you)", state.local, true);
        state.backend = msg.backend || "builtin";
        if (state.backend === "janus") await publishJanus();
        else await connectServer(msg.slots || 0);
        break;
      case "subscribe_offer":
        await subscribeOffer(msg);
        break;
      case "answer":
        await state.server.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        break;
      case "media_lost":  // the server noticed that our media stopped
        state.mediaLog.push({ id: state.id, state: "lost", cause: msg.cause, at: Date.now() });
        reconnectMedia(msg.cause || "the server noticed that our media stopped");
        break;
      case "peer_media":
        state.mediaLog.push({ id: msg.id, state: msg.state, at: Date.now() });
        if (msg.state === "reconnecting") state.peersReconnecting.add(msg.id);
        else state.peersReconnecting.delete(msg.id);
        markTile(msg.id);
        break;
      case "peer_joined":
        state.peers.set(msg.peer.id, { name: msg.peer.name, role: msg.peer.role });
        break;
      case "peer_left":
        state.peers.delete(msg.id);
        break;
      case "slot":
        showSlot(msg.index, msg.peer);
        break;
      case "recording":
        applyStatus(msg.recording, msg.prompt);
        break;
      case "result":
        settle(msg.command, null);
        break;
      case "error":
        showError(msg.message);
        settle(msg.command, msg.message);
        toParent({ type: "recording_error", command: msg.command, message: msg.message });
        break;
    }
  }

  // The connection to the server: m-lines audio, video (ours, send-only), then per slot
  // video + audio (receive-only) - the order the server expects.
  async function connectServer(nslots, reason) {
    const pc = newPc();
    state.server = pc;
    state.nslots = nslots;
    state.slots = [];
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== state.server) return;
      if (pc.connectionState === "connected" && state.reconnecting) {
        state.reconnecting = false;
        document.body.dataset.media = "live";
        markTile(state.id);
      } else if (pc.connectionState === "failed") {
        reconnectMedia("the browser's media connection failed");
      }
    });
    const audio = state.local.getAudioTracks()[0];
    const video = state.local.getVideoTracks()[0];
    pc.addTransceiver(audio || "audio", { direction: audio ? "sendonly" : "inactive", streams: [state.local] });
    const videoT = pc.addTransceiver(video || "video", { direction: video ? "sendonly" : "inactive", streams: [state.local] });
    if (video) await keepResolution(videoT.sender);
    for (let i = 0; i < nslots; i++) {
      state.slots.push({
        video: pc.addTransceiver("video", { direction: "recvonly" }),
        audio: pc.addTransceiver("audio", { direction: "recvonly" }),
        peer: null,
      });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    send(Object.assign({ type: "offer", sdp: filterSdp(pc.localDescription.sdp) },
      reason ? { reason } : {}));
  }

  // Our media stopped: a new connection to the server on the same WebSocket session
  // (same participant id and tiles; the server switches everyone's slots to it).
  async function reconnectMedia(cause) {
    if (state.reconnecting || !state.server) return;
    state.reconnecting = true;
    state.reconnects += 1;
    document.body.dataset.media = "reconnecting";
    markTile(state.id);
    console.warn(`recfw: media stopped (${cause}); reconnecting`);
    const old = state.server;
    state.server = null;
    try { old.close(); } catch (err) { /* already closed */ }
    try {
      await connectServer(state.nslots, cause);
    } catch (err) {
      state.reconnecting = false;
      showError(`reconnecting failed: ${err.message}`);
    }
  }

  // --- Janus: publish (simulcast), and answer the subscription's offers -------------
  // Three layers of the 720p camera: h (full size), m (1/2), l (1/4). Janus sends each
  // viewer one layer (docs/rooms.md: the recorder the highest, a page what fits its tiles).
  async function publishJanus() {
    const pc = newPc();
    state.server = pc;
    const audio = state.local.getAudioTracks()[0];
    const video = state.local.getVideoTracks()[0];
    pc.addTransceiver(audio || "audio", { direction: audio ? "sendonly" : "inactive", streams: [state.local] });
    if (video) {
      const top = state.video.maxBitrate;
      pc.addTransceiver(video, {
        direction: "sendonly", streams: [state.local],
        sendEncodings: [
          { rid: "h", maxBitrate: top },
          { rid: "m", maxBitrate: Math.round(top / 4), scaleResolutionDownBy: 2 },
          { rid: "l", maxBitrate: Math.round(top / 16), scaleResolutionDownBy: 4 },
        ],
      });
    } else {
      pc.addTransceiver("video", { direction: "inactive" });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    send({ type: "offer", sdp: filterSdp(pc.localDescription.sdp) });
  }

  async function subscribeOffer(msg) {
    if (!state.sub) {
      state.sub = newPc();
    }
    const pc = state.sub;
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    send({ type: "subscribe_answer", sdp: filterSdp(pc.localDescription.sdp) });
    state.mids = new Map(msg.streams.filter((s) => s.peer).map((s) => [String(s.mid), s.peer]));
    const byPeer = new Map();
    for (const t of pc.getTransceivers()) {
      const peer = state.mids.get(String(t.mid));
      if (!peer || !t.receiver.track) continue;
      if (!byPeer.has(peer.id)) byPeer.set(peer.id, { peer, tracks: [] });
      byPeer.get(peer.id).tracks.push(t.receiver.track);
    }
    for (const tile of document.querySelectorAll(".tile:not([data-self])")) {
      if (!byPeer.has(tile.dataset.peerId)) tile.remove();
    }
    for (const { peer, tracks } of byPeer.values()) {
      const tile = document.querySelector(`.tile[data-peer-id="${CSS.escape(peer.id)}"] video`);
      const same = tile && tile.srcObject && tracks.every((t) => tile.srcObject.getTracks().includes(t));
      if (!same) addTile(peer.id, peer.name || "Guest", new MediaStream(tracks), false);
    }
  }

  // The server forwards our video as we send it: keep the captured size (drop frame
  // rate first when bandwidth or CPU is short), so every tile stays sharp.
  async function keepResolution(sender) {
    try {
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      params.encodings[0].maxBitrate = state.video.maxBitrate;
      await sender.setParameters(params);
    } catch (err) {
      console.warn("recfw: cannot set the video sender's parameters:", err);
    }
  }

  async function openCamera(video) {
    const width = video.width || 1280, height = video.height || 720, fps = video.fps || 30;
    // About 0.1 bit per pixel at the frame rate: 2.8 Mbit/s for 720p30.
    state.video = { width, height, fps, maxBitrate: Math.round(width * height * fps * 0.1) };
    try {
      state.local = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: width }, height: { ideal: height }, frameRate: { max: fps } },
        audio: true,
      });
      for (const track of state.local.getVideoTracks()) track.contentHint = "detail";
    } catch (err) {
      showError(`camera/microphone unavailable: ${err.message}`);
      state.local = new MediaStream();
    }
  }

  // The server put another participant into (or took them out of) one of our slots.
  function showSlot(index, peer) {
    const slot = state.slots[index];
    if (!slot) return;
    if (slot.peer) removeTile(slot.peer.id);
    slot.peer = peer;
    if (!peer) return;
    const stream = new MediaStream([slot.video.receiver.track, slot.audio.receiver.track]);
    addTile(peer.id, peer.name || "Guest", stream, false);
  }
  // A tile whose person's media stopped (or our own, while we reconnect) says so.
  function markTile(id) {
    const tile = document.querySelector(`.tile[data-peer-id="${CSS.escape(id)}"]`);
    if (!tile) return;
    const on = id === state.id ? state.reconnecting : state.peersReconnecting.has(id);
    if (on) tile.dataset.reconnecting = "1"; else delete tile.dataset.reconnecting;
  }
  function removeTile(id) {
    const tile = document.querySelector(`.tile[data-peer-id="${CSS.escape(id)}"]`);
    if (tile) tile.remove();
  }

  // --- tiles (people only: the recorder is never a peer, so never a tile) -----------
  function addTile(id, label, stream, muted) {
    let tile = document.querySelector(`.tile[data-peer-id="${CSS.escape(id)}"]`);
    if (!tile) {
      tile = document.createElement("div");
      tile.className = "tile";
      tile.dataset.peerId = id;
      if (muted) tile.dataset.self = "1";
      const video = document.createElement("video");
      video.autoplay = true; video.playsInline = true; video.muted = muted;
      const span = document.createElement("span");
      span.className = "label"; span.textContent = label;
      const note = document.createElement("span");
      note.className = "reconnecting"; note.textContent = "Reconnecting\u2026";
      tile.append(video, span, note);
      $("tiles").append(tile);
    }
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) { video.srcObject = stream; video.play().catch(() => {}); }
    markTile(id);
  }

  // --- recording status, controls, embed API ------------------------------------------
  const EMBED_STATUS = { starting: "starting", started: "started", stopped: "stopped" };
  function applyStatus(recording, prompt) {
    state.recording = recording; state.prompt = !!prompt;
    document.body.dataset.recording = recording;
    const on = recording === "starting" || recording === "started";
    $("rec-indicator").hidden = !(recording === "started");
    setStatusText(recording === "idle" ? "" : `recording ${recording}`);
    const btn = $("record-btn");
    const hostControls = state.role === "host" && (state.trigger === "none" || state.trigger === "prompt");
    btn.hidden = !hostControls || (state.trigger === "prompt" && !on);
    btn.textContent = on ? "Stop" : "Record";
    btn.classList.toggle("recording", on);
    btn.disabled = recording === "starting" || recording === "stopping";
    $("prompt").hidden = !state.prompt;
    const embedStatus = EMBED_STATUS[recording];
    if (embedStatus && embedStatus !== state.lastEmbedStatus) {
      state.lastEmbedStatus = embedStatus;
      toParent({ type: "recording_status_change", status: embedStatus });
    }
  }
  function setStatusText(text) { $("rec-status").textContent = text; }
  function showError(text) {
    const el = $("error");
    el.textContent = text; el.hidden = false;
    clearTimeout(showError.timer);
    showError.timer = setTimeout(() => { el.hidden = true; }, 8000);
  }
  function toParent(msg) {
    if (embed && window.parent !== window) window.parent.postMessage(msg, "*");
  }

  // Commands return a promise: resolved when the server accepted, rejected with its reason.
  function command(type, extra) {
    return new Promise((resolve, reject) => {
      state.pending.push({ type, resolve, reject });
      send(Object.assign({ type }, extra || {}));
    });
  }
  function settle(type, error) {
    const i = state.pending.findIndex((p) => p.type === type);
    if (i < 0) return;
    const [p] = state.pending.splice(i, 1);
    if (error) p.reject(new Error(error)); else p.resolve();
  }
  window.recfw = {
    startRecording: () => command("start_recording"),
    stopRecording: () => command("stop_recording"),
    answerPrompt: (accepted) => command("prompt_answer", { accepted: !!accepted }),
    get status() { return state.recording; },
    get role() { return state.role; },
  };

  $("record-btn").onclick = () => {
    const on = state.recording === "starting" || state.recording === "started";
    (on ? window.recfw.stopRecording() : window.recfw.startRecording()).catch(() => {});
  };
  $("prompt-accept").onclick = () => window.recfw.answerPrompt(true).catch(() => {});
  $("prompt-decline").onclick = () => window.recfw.answerPrompt(false).catch(() => {});

  // postMessage commands from the embedding page (the server refuses visitors).
  window.addEventListener("message", (ev) => {
    if (!embed || ev.source !== window.parent || !ev.data) return;
    if (ev.data.type === "start_recording") window.recfw.startRecording().catch(() => {});
    else if (ev.data.type === "stop_recording") window.recfw.stopRecording().catch(() => {});
  });

  async function main() {
    $("room-name").textContent = room;
    if (embed) document.body.classList.add("embed");
    connect();
  }
  main();
})();
