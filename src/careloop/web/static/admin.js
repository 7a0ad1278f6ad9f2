// The admin pages: after a refused form, move the focus to the summary of what to fix,
// so a screen reader reads it first and the keyboard starts from its links.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
})();
