// Chat client for the fastapi-realtime example: plain JS on top of the socket.io-client bundle.
"use strict";

(() => {
  const ACK_TIMEOUT_MS = 5000;
  const TYPING_IDLE_MS = 2000;     // stop "typing" after this long without a keystroke
  const TYPING_REFRESH_MS = 3000;  // re-announce while typing, so the others' expiry stays fresh
  const TYPING_EXPIRE_MS = 5000;   // forget a typist we have not heard from (lost "stop" event)
  const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,23}$/;
  const NICKNAME_COOKIE = "chat_nickname";  // remembered for the next visit; the server falls back to it

  const $ = (id) => document.getElementById(id);
  const state = {
    socket: null,
    nickname: "",
    room: null,
    typingSentAt: 0,
    typingIdle: null,
    typers: new Map(),  // socket id -> {nickname, timer}
    localSeq: 0,
    ids: new Set(),     // every socket id this page has had: history lines from them are ours
    away: false,        // between a disconnect and the next connect
    caughtUp: [],       // lines that arrived while away (replayed by a recovered session)
  };

  // ---- rendering ----------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;  // never innerHTML: messages are user input
    return node;
  }

  function clock(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function messageNode(msg, mine) {
    if (msg.kind === "system") {
      const li = el("li", "msg system", msg.text);
      li.dataset.id = msg.id;
      return li;
    }
    const li = el("li", mine ? "msg user mine" : "msg user");
    li.dataset.id = msg.id;
    const meta = el("div", "meta");
    meta.append(el("span", "author", msg.author), el("time", "time", clock(msg.ts)));
    li.append(meta, el("p", "body", msg.text));
    if (mine) li.append(el("span", "delivery"));
    return li;
  }

  function scrollToEnd() {
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
  }

  function addMessage(msg, mine = false) {
    if (msg.id && $("messages").querySelector(`[data-id="${CSS.escape(msg.id)}"]`)) return null;
    const node = messageNode(msg, mine);
    $("messages").append(node);
    scrollToEnd();
    return node;
  }

  function addNote(text) {
    return addMessage({ kind: "system", text, id: `note-${++state.localSeq}` });
  }

  // A notice about the connection itself; `kind` is "recovered" or "new-session".
  function connectionNotice(text, kind, before) {
    const node = messageNode({ kind: "system", text, id: `note-${++state.localSeq}` });
    node.classList.add("notice", kind);
    if (before && before.isConnected) $("messages").insertBefore(node, before);
    else $("messages").append(node);
    scrollToEnd();
  }

  // The reason a failed ack gives: {error: "validation_error", detail: [...]} when the payload
  // did not fit the server's model, {error, message} for a refusal. Null for a success.
  function ackError(res) {
    if (!res || typeof res.error !== "string") return null;
    if (res.error === "validation_error" && Array.isArray(res.detail)) {
      return res.detail.map((d) => d.msg).join("; ") || "invalid request";
    }
    return res.message || res.error;
  }

  function setDelivery(node, status, title) {
    node.dataset.status = status;
    const labels = { sending: "sending…", delivered: "✓ delivered", failed: "✗ not delivered" };
    const mark = node.querySelector(".delivery");
    mark.textContent = labels[status];
    mark.title = title || "";
  }

  function renderRooms(rooms) {
    const list = $("rooms");
    list.replaceChildren();
    for (const room of rooms) {
      const li = el("li");
      const button = el("button", room.name === state.room ? "room current" : "room");
      button.type = "button";
      button.title = room.nicknames.join(", ") || "nobody here yet";
      button.append(el("span", "room-label", `#${room.name}`), el("span", "count", String(room.members)));
      button.addEventListener("click", () => { if (room.name !== state.room) join(room.name); });
      li.append(button);
      list.append(li);
    }
  }

  function renderTyping() {
    const names = [...state.typers.values()].map((t) => t.nickname);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "several people are typing…";
    $("typing").textContent = text;
  }

  function clearTyper(id) {
    const typer = state.typers.get(id);
    if (!typer) return;
    clearTimeout(typer.timer);
    state.typers.delete(id);
    renderTyping();
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = `status ${kind || ""}`;
  }

  function showTransport() {
    const socket = state.socket;
    if (socket && socket.connected) setStatus(`online · ${socket.io.engine.transport.name}`, "online");
  }

  function setComposerEnabled(enabled) {
    for (const node of $("composer").elements) node.disabled = !enabled;
    $("leave").disabled = !enabled;
  }

  function showRoom(room) {
    state.room = room;
    $("room-name").textContent = room || "no room";
    $("text").placeholder = room ? `Message #${room}` : "Pick a room on the left";
    $("messages").replaceChildren();
    for (const id of [...state.typers.keys()]) clearTyper(id);
    document.querySelectorAll("#rooms .room").forEach((b) => {
      b.classList.toggle("current", b.querySelector(".room-label").textContent === `#${room}`);
    });
    setComposerEnabled(Boolean(room));
  }

  // ---- actions ------------------------------------------------------------------------------

  function join(room, notice) {
    stopTyping();
    // Switch immediately so live messages for the new room are kept; history is prepended later.
    showRoom(room);
    state.socket.timeout(ACK_TIMEOUT_MS).emit("join", { room }, (err, res) => {
      if (state.room !== room) return;  // the user already moved on
      if (err) return addNote(`Could not join #${room}: the server did not answer.`);
      const error = ackError(res);
      if (error) return addNote(`Could not join #${room}: ${error}`);
      const first = $("messages").firstChild;
      for (const msg of res.history) {
        // With several server processes a line said while joining may also have come live.
        if ($("messages").querySelector(`[data-id="${CSS.escape(msg.id)}"]`)) continue;
        const node = messageNode(msg, state.ids.has(msg.sid));
        if (node.classList.contains("mine")) setDelivery(node, "delivered");
        $("messages").insertBefore(node, first);
      }
      const others = res.members.filter((n) => n !== state.nickname);
      addNote(`You joined #${room}. ${others.length ? `Here: ${others.join(", ")}.` : "Nobody else is here yet."}`);
      if (notice) connectionNotice(notice, "new-session");
    });
  }

  function leave() {
    const room = state.room;
    if (!room) return;
    stopTyping();
    showRoom(null);
    state.socket.timeout(ACK_TIMEOUT_MS).emit("leave", (err) => {
      addNote(err ? `Leaving #${room} timed out.` : `You left #${room}. Pick a room on the left.`);
    });
  }

  function send(text) {
    const room = state.room;
    stopTyping();
    const node = addMessage({ kind: "chat", id: `local-${++state.localSeq}`, author: state.nickname, text, ts: Date.now() }, true);
    setDelivery(node, "sending");
    // The server's ack is the delivery receipt: it answers once the message went out to the room.
    state.socket.timeout(ACK_TIMEOUT_MS).emit("message", { room, text }, (err, res) => {
      if (err) return setDelivery(node, "failed", "no answer from the server");
      const error = ackError(res);
      if (error) return setDelivery(node, "failed", error);
      node.dataset.id = res.id;
      node.querySelector(".time").textContent = clock(res.ts);
      setDelivery(node, "delivered");
    });
  }

  function typing() {
    if (!state.room) return;
    if (!$("text").value) return stopTyping();
    const now = Date.now();
    if (now - state.typingSentAt > TYPING_REFRESH_MS) {
      state.socket.emit("typing", { typing: true });
      state.typingSentAt = now;
    }
    clearTimeout(state.typingIdle);
    state.typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingIdle);
    if (state.typingSentAt && state.socket) state.socket.emit("typing", { typing: false });
    state.typingSentAt = 0;
  }

  function rename() {
    const nickname = window.prompt("New nickname", state.nickname);
    if (nickname === null || !nickname.trim()) return;
    state.socket.timeout(ACK_TIMEOUT_MS).emit("set-nickname", { nickname }, (err, res) => {
      if (err) return addNote("Rename timed out.");
      const error = ackError(res);
      if (error) return addNote(`Rename refused: ${error}`);
      state.nickname = res.nickname;
      $("me").textContent = res.nickname;
      addNote(`You are now known as ${res.nickname}.`);
    });
  }

  // ---- connection ---------------------------------------------------------------------------

  function loginError(text) {
    $("login-error").textContent = text;
    $("chat").hidden = true;
    $("login").hidden = false;
  }

  function connect(nickname, room) {
    const socket = io({ auth: { nickname } });
    state.socket = socket;
    window.socket = socket;  // for the console (and the browser test, which drops its transport)
    let entered = false;

    // A new engine is created on every (re)connection: watch each for the websocket upgrade.
    socket.io.on("open", () => socket.io.engine.on("upgrade", showTransport));

    socket.on("welcome", (info) => {
      state.nickname = info.nickname;
      $("me").textContent = info.nickname;
      renderRooms(info.rooms);
    });

    socket.on("connect", () => {
      state.ids.add(socket.id);
      showTransport();
      const caughtUp = state.caughtUp;
      state.away = false;
      state.caughtUp = [];
      if (!entered) {
        entered = true;
        // Accepted by the server: remember the nickname for the next visit.
        document.cookie = `${NICKNAME_COOKIE}=${encodeURIComponent(nickname)}; path=/; max-age=31536000; samesite=lax`;
        $("login").hidden = true;
        $("chat").hidden = false;
        join(room);
      } else if (socket.recovered) {
        // The server kept the session: same id and rooms, and what we missed has just been
        // replayed (before this event). The notice goes above those lines.
        const n = caughtUp.length;
        const what = n ? ` (${n} ${n === 1 ? "line" : "lines"} arrived while you were away)` : "";
        connectionNotice(`Reconnected — nothing missed${what}.`, "recovered", caughtUp[0]);
      } else if (state.room) {
        // A new session: the server forgot us (or restarted), so join the room again; its
        // history stands in for what was missed.
        join(state.room, `Reconnected (new session): rejoined #${state.room}.`);
      } else {
        connectionNotice("Reconnected (new session).", "new-session");
      }
      $("text").focus();
    });

    socket.on("connect_error", (err) => {
      if (socket.active) return setStatus("reconnecting…", "offline");
      // Refused by the server (e.g. an invalid nickname): back to the form.
      socket.disconnect();
      loginError(`The server refused the connection: ${err.message}`);
    });

    socket.on("disconnect", (reason) => {
      state.away = true;
      setStatus(`offline (${reason})`, "offline");
      for (const id of [...state.typers.keys()]) clearTyper(id);
    });

    socket.on("rooms", renderRooms);

    // Lines replayed by a recovered session arrive before "connect", while `away` is still set.
    const line = (msg) => {
      const node = addMessage(msg);
      if (node && state.away) state.caughtUp.push(node);
    };

    socket.on("message", (msg) => {
      if (msg.room !== state.room) return;
      clearTyper(msg.sid);
      line(msg);
    });

    socket.on("system", (msg) => {
      if (msg.room === state.room) line(msg);
    });

    // An event sent without an ack whose payload the server's model refused.
    socket.on("error", (err) => {
      addNote(`The server refused a "${err.event}" event: ${ackError(err) || "invalid request"}`);
    });

    socket.on("typing", ({ room, id, nickname, typing }) => {
      if (room !== state.room) return;
      clearTyper(id);
      if (!typing) return;
      state.typers.set(id, { nickname, timer: setTimeout(() => clearTyper(id), TYPING_EXPIRE_MS) });
      renderTyping();
    });
  }

  // ---- wiring -------------------------------------------------------------------------------

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    if (typeof io !== "function") {
      return loginError("The socket.io client did not load: run `make node`, then reload.");
    }
    const nickname = $("nickname").value.trim();
    const room = $("room").value.trim().toLowerCase().replace(/^#/, "");
    if (!ROOM_RE.test(room)) return loginError("Room names are 1-24 characters: a-z, 0-9, - and _.");
    if (state.socket) state.socket.disconnect();
    connect(nickname, room);
  });

  // Closing the tab is a goodbye, not a dropped connection the server should wait for.
  window.addEventListener("pagehide", () => { if (state.socket) state.socket.disconnect(); });

  const remembered = document.cookie.split("; ").find((c) => c.startsWith(`${NICKNAME_COOKIE}=`));
  if (remembered) {
    try {
      $("nickname").value = decodeURIComponent(remembered.slice(NICKNAME_COOKIE.length + 1));
    } catch {
      // A malformed cookie just leaves the field empty.
    }
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text || !state.room) return;
    $("text").value = "";
    send(text);
  });

  $("text").addEventListener("input", typing);
  $("text").addEventListener("blur", stopTyping);
  $("leave").addEventListener("click", leave);
  $("rename").addEventListener("click", rename);

  $("new-room").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("new-room-name");
    const room = input.value.trim().toLowerCase().replace(/^#/, "");
    if (!ROOM_RE.test(room)) return addNote("Room names are 1-24 characters: a-z, 0-9, - and _.");
    input.value = "";
    if (room !== state.room) join(room);
  });
})();
