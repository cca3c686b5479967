// brana console: the live stream of a session's commands. Everything else
// works without JavaScript. Text is always set with textContent, never as
// HTML: party names and values come from outside.
(function () {
  "use strict";

  var list = document.getElementById("stream");
  var status = document.getElementById("stream-status");
  if (!list || !list.dataset.events || !window.EventSource) {
    return;
  }
  var maxItems = 500;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function clock(t) {
    var d = new Date(t);
    return isNaN(d) ? t : d.toLocaleTimeString();
  }

  function line(ev) {
    var parts = [clock(ev.time), "#" + ev.seq, ev.type];
    if (ev.target) parts.push(ev.target);
    if (ev.operation) parts.push(ev.operation);
    if (ev.text) parts.push("→ " + ev.text);
    if (ev.outcome) parts.push("[" + ev.outcome + "]");
    if (ev.detail && ev.type.indexOf("session.") === 0) parts.push(ev.detail);
    return parts.join("  ");
  }

  function add(ev, extra) {
    var li = document.createElement("li");
    li.textContent = line(ev);
    if (ev.decision) {
      li.className = ev.decision;
      li.dataset.decision = ev.decision;
    }
    if (extra) {
      li.className += " " + extra;
    }
    li.dataset.seq = ev.seq;
    var atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.appendChild(li);
    while (list.children.length > maxItems) {
      list.removeChild(list.firstChild);
    }
    if (atBottom) {
      list.scrollTop = list.scrollHeight;
    }
  }

  var es = new EventSource(list.dataset.events);
  es.onopen = function () { say("Live: new commands appear below as they happen."); };
  es.onerror = function () {
    say(es.readyState === EventSource.CLOSED ? "The live stream stopped. Reload the page." : "Connection lost; reconnecting…");
  };
  es.addEventListener("record", function (e) {
    try { add(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
  });
  es.addEventListener("end", function (e) {
    es.close();
    say("The session has ended.");
    var li = document.createElement("li");
    li.className = "end";
    var why = "";
    try { why = JSON.parse(e.data).reason || ""; } catch (err) { /* no reason */ }
    li.textContent = "Session ended" + (why ? ": " + why : ".");
    list.appendChild(li);
    document.querySelectorAll("form.kill button").forEach(function (b) { b.disabled = true; });
  });
  es.addEventListener("logout", function () {
    es.close();
    say("Your login has ended. Log in again to keep watching.");
  });
})();
