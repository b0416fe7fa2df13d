// Orchestra's pages work without this file; it adds list items in place and keeps the timer ticking.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-item]");
    if (!button) return;
    var list = button.closest("[data-list]");
    var count = list.querySelector("[data-count]");
    var index = parseInt(count.value, 10) || 0;
    var blank = list.querySelector("template[data-blank]");
    var html = blank.innerHTML.split("__i__").join(String(index));
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var item = holder.firstElementChild;
    item.setAttribute("data-item", String(index));
    list.querySelector("[data-items]").appendChild(item);
    count.value = String(index + 1);
    var first = item.querySelector("input, textarea, select");
    if (first) first.focus();
  });

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    document.querySelectorAll("[data-started]").forEach(function (el) {
      var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(el.getAttribute("data-started"))) / 1000));
      el.textContent = Math.floor(seconds / 3600) + ":" + pad(Math.floor(seconds % 3600 / 60)) + ":" + pad(seconds % 60);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);
})();
