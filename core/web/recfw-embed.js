// recfw embed API: control a recfw room shown in an <iframe> (room URL with ?embed=1).
//
//   const room = new RecfwRoom(document.querySelector("iframe"));
//   room.on("recording_status_change", (e) => console.log(e.status)); // starting|started|stopped
//   room.on("recording_error", (e) => console.warn(e.command, e.message));
//   room.startRecording();   // host only; a visitor gets a recording_error
//   room.stopRecording();
(function (global) {
  "use strict";
  function RecfwRoom(iframe, targetOrigin) {
    this.iframe = iframe;
    this.targetOrigin = targetOrigin || new URL(iframe.src, location.href).origin;
    this.handlers = {};
    this.status = null;
    const self = this;
    global.addEventListener("message", function (ev) {
      if (ev.source !== iframe.contentWindow || !ev.data || !ev.data.type) return;
      if (ev.data.type === "recording_status_change") self.status = ev.data.status;
      (self.handlers[ev.data.type] || []).forEach(function (fn) { fn(ev.data); });
    });
  }
  RecfwRoom.prototype.on = function (type, fn) {
    (this.handlers[type] = this.handlers[type] || []).push(fn);
    return this;
  };
  RecfwRoom.prototype.post = function (msg) {
    this.iframe.contentWindow.postMessage(msg, this.targetOrigin);
  };
  RecfwRoom.prototype.startRecording = function () { this.post({ type: "start_recording" }); };
  RecfwRoom.prototype.stopRecording = function () { this.post({ type: "stop_recording" }); };
  global.RecfwRoom = RecfwRoom;
})(window);
