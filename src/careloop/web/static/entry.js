// careloop data entry: live branching logic, calculations and checks.
// The server decides (same capture rules as on save); this script only asks it
// as the person types and shows the answer. Without JavaScript the form still
// works: the server validates on save and shows every error.
(function () {
  "use strict";
  // After a refused save the error summary takes the focus, so a screen reader reads it
  // first and a keyboard user tabs straight to its links; after a save, the notice that
  // says what was saved does (the GOV.UK design system's pattern for both).
  var first = document.querySelector("[data-error-summary]") ||
              document.querySelector("[data-focus-on-load]");
  if (first) { first.focus(); }
  var form = document.getElementById("entry");
  if (!form) { return; }
  // Enter in a box must not save the form by accident (the page's hidden first button
  // already stops it without this script); in a text area it starts a new line.
  form.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key === "Enter" && el.tagName === "INPUT" &&
        ["submit", "button", "reset"].indexOf(el.type) < 0) {
      event.preventDefault();
    }
  });
  var url = form.getAttribute("data-check-url");
  var csrf = form.querySelector('input[name="csrf_token"]');
  var timer = null;
  var touched = {};

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

  function invalid(box, bad) {
    Array.prototype.forEach.call(box.querySelectorAll("input, select, textarea, fieldset"),
      function (el) {
        if (bad) { el.setAttribute("aria-invalid", "true"); } else { el.removeAttribute("aria-invalid"); }
      });
  }

  function apply(result) {
    var hidden = {};
    result.hidden.forEach(function (name) { hidden[name] = true; });
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (box) {
      var name = box.getAttribute("data-field");
      box.hidden = !!hidden[name];
      var err = box.querySelector("[data-error-for]");
      // The live check leaves out "needs an answer": a field's message from the last save
      // stays until the person changes that field.
      if (!result.errors[name] && !touched[name]) { return; }
      if (err) { err.textContent = result.errors[name] || ""; }
      box.classList.toggle("has-error", !!result.errors[name]);
      invalid(box, !!result.errors[name]);
    });
    // A section's heading goes with its fields: hidden when every one of them is.
    Array.prototype.forEach.call(form.querySelectorAll("[data-section]"), function (section) {
      var boxes = section.querySelectorAll("[data-field]");
      section.hidden = boxes.length > 0 && Array.prototype.every.call(boxes, function (b) {
        return b.hidden;
      });
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

  function later(event) {
    if (event && event.target && event.target.name) { touched[event.target.name] = true; }
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
