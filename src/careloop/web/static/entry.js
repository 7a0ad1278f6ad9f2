// careloop data entry: live branching logic, calculations and checks.
// The server decides (same capture rules as on save); this script only asks it
// as the person types and shows the answer. Without JavaScript the form still
// works: the server validates on save and shows every error.
(function () {
  "use strict";
  var form = document.getElementById("entry");
  if (!form) { return; }
  var url = form.getAttribute("data-check-url");
  var csrf = form.querySelector('input[name="csrf_token"]');
  var timer = null;

  function values() {
    var out = {};
    var boxes = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.name === "version" || el.name === "reason" ||
          el.name === "event_date" || el.name === "submit") { return; }
      if (el.type === "checkbox") {
        boxes[el.name] = boxes[el.name] || [];
        if (el.checked) { boxes[el.name].push(el.value); }
      } else if (el.type === "radio") {
        if (el.checked) { out[el.name] = el.value; }
      } else if (el.value !== "") {
        out[el.name] = el.value;
      }
    });
    Object.keys(boxes).forEach(function (k) { out[k] = boxes[k]; });
    return out;
  }

  function apply(result) {
    var hidden = {};
    result.hidden.forEach(function (name) { hidden[name] = true; });
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (box) {
      var name = box.getAttribute("data-field");
      box.hidden = !!hidden[name];
      var section = form.querySelector('[data-section-for="' + name + '"]');
      if (section) { section.hidden = !!hidden[name]; }
      var err = box.querySelector("[data-error-for]");
      if (err) { err.textContent = result.errors[name] || ""; }
      box.classList.toggle("has-error", !!result.errors[name]);
    });
    Object.keys(result.calc).forEach(function (name) {
      var out = form.querySelector('[data-calc="' + name + '"]');
      if (out) { out.textContent = result.calc[name]; }
    });
  }

  function check() {
    var headers = { "Content-Type": "application/json" };
    if (csrf && csrf.value) { headers["X-CSRF-Token"] = csrf.value; }
    fetch(url, { method: "POST", headers: headers, credentials: "same-origin",
                 body: JSON.stringify({ values: values() }) })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (result) { if (result) { apply(result); } })
      .catch(function () { /* offline: the server checks again on save */ });
  }

  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(check, 150);
  }
  // A slider sets the number box that holds the answer. It starts with no position of
  // its own (faded), so a question nobody touched stays unanswered; "Clear" empties it.
  function slider(box) {
    var number = box.querySelector('input[type="number"]');
    if (!number) { return; }
    var range = document.createElement("input");
    range.type = "range";
    range.min = number.min;
    range.max = number.max;
    range.step = "1";
    range.tabIndex = -1;  // the number box is the control for keyboards and screen readers
    range.setAttribute("aria-hidden", "true");
    range.className = "slider-track";
    var clear = document.createElement("button");
    clear.type = "button";
    clear.className = "slider-clear";
    clear.textContent = box.getAttribute("data-clear-label") || "Clear";
    function show() {
      var empty = number.value === "";
      box.classList.toggle("untouched", empty);
      range.value = empty ? String((Number(number.min) + Number(number.max)) / 2) : number.value;
      clear.hidden = empty;
    }
    range.addEventListener("input", function () {
      number.value = range.value;
      show();
      number.dispatchEvent(new Event("input", { bubbles: true }));
    });
    clear.addEventListener("click", function () {
      number.value = "";
      show();
      number.dispatchEvent(new Event("input", { bubbles: true }));
    });
    number.addEventListener("input", show);
    box.insertBefore(range, number);
    box.insertBefore(clear, number.nextSibling);
    show();
  }
  Array.prototype.forEach.call(form.querySelectorAll("[data-slider]"), slider);

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.setAttribute("data-live", "ready");
})();
