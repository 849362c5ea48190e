// The live plan view: follow one stream over Server-Sent Events (docs/protocol.md,
// "Following a stream over SSE"). The browser's EventSource sends this page's session
// cookie, and after a dropped connection it reconnects with Last-Event-ID by itself, so
// the server sends exactly the events missed. Text goes in as text nodes, never as HTML.
"use strict";

(function () {
  const reply = document.getElementById("reply");
  const status = document.getElementById("status");
  const changes = document.getElementById("changes");
  if (!reply || !status || !reply.dataset.events) {
    return;
  }

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function addChange(event) {
    const none = changes.querySelector(".none");
    if (none) {
      none.remove();
    }
    const item = document.createElement("li");
    item.textContent = event.op + " " + event.path + " (" + event.status + ")" +
      (event.detail ? ": " + event.detail : "");
    changes.append(item);
  }

  // The page was rendered with the stream's status then; "following" until the events say.
  show("following", status.textContent);
  const source = new EventSource(reply.dataset.events);

  source.addEventListener("status", function (message) {
    const event = JSON.parse(message.data);
    show("running", event.stage + (event.detail ? ": " + event.detail : ""));
  });
  source.addEventListener("delta", function (message) {
    reply.append(JSON.parse(message.data).text);
  });
  source.addEventListener("change", function (message) {
    addChange(JSON.parse(message.data));
  });

  function ended(message) {
    // Closed at once: left open, EventSource would reconnect after the stream's end.
    source.close();
    const event = JSON.parse(message.data);
    if (event.type === "snapshot") {
      reply.textContent = event.reply;
    }
    const why = event.error_message ? ": " + event.error_message : "";
    show(event.status, event.status + why);
  }
  source.addEventListener("end", ended);
  source.addEventListener("snapshot", ended);

  source.addEventListener("open", function () {
    if (status.dataset.state === "reconnecting") {
      show("running", "running");
    }
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CONNECTING) {
      show("reconnecting", "connection lost: reconnecting…");
    } else {
      show("unavailable", "this stream cannot be followed (signed out?): reload the page");
    }
  });
})();
