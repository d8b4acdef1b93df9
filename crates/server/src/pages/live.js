// waygate run page: follows the run while it goes on. The page is complete without this
// script (a reload shows the same); with it, each new event of the run (the server-sent
// events of /v1/runs/RUN/events, authenticated by the session cookie) brings the header,
// graph and timeline up to date in place, and the approvals too unless a comment is being
// typed there.
(function () {
  "use strict";
  var timeline = document.getElementById("timeline");
  if (!timeline || timeline.dataset.live !== "true" || !window.EventSource) {
    return;
  }
  var run = timeline.dataset.run;
  var after = timeline.dataset.after;
  var url = "/v1/runs/" + encodeURIComponent(run) + "/events?after=" + encodeURIComponent(after);
  var source = new EventSource(url);
  var pending = null;

  function typing() {
    var boxes = document.querySelectorAll("#approvals textarea");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].value !== "" || document.activeElement === boxes[i]) {
        return true;
      }
    }
    return false;
  }

  function refresh() {
    pending = null;
    // The run's own page: this one may be the answer to a refused approval (a POST).
    fetch("/runs/" + encodeURIComponent(run), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var ids = ["run-header", "graph", "timeline"];
        if (!typing()) {
          ids.push("approvals");
        }
        ids.forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) {
            now.replaceWith(document.importNode(next, true));
          }
        });
      })
      .catch(function () {
        // Signed out, or the server is gone: stop following; a reload says why.
        source.close();
      });
  }

  function soon() {
    if (pending === null) {
      pending = window.setTimeout(refresh, 300);
    }
  }

  source.addEventListener("run-event", soon);
  source.addEventListener("end", function () {
    source.close();
    soon();
  });
})();
