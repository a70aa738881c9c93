// The rating page's keyboard and autosave. Every choice and the comment are sent to the server the moment
// they are made; the page works without this script too (the form posts everything on "next").
(function () {
  "use strict";
  const root = document.getElementById("rate");
  if (!root) return;
  const choices = root.dataset.choices.split(",");
  const fieldsets = Array.from(document.querySelectorAll("fieldset.criterion"));
  const status = document.getElementById("status");
  const comment = document.getElementById("comment");
  let lastMark = performance.now();
  let active = Math.max(0, fieldsets.findIndex((f) => !f.querySelector("input:checked")));
  let pending = Promise.resolve();

  // Seconds since the page opened or since the last answer: the server adds them up per item.
  function elapsed() {
    const now = performance.now();
    const seconds = (now - lastMark) / 1000;
    lastMark = now;
    return seconds;
  }

  function send(body) {
    body.seconds = elapsed();
    status.textContent = "جارٍ الحفظ…";
    // Sent one after another, so the server stores them in the order they were given.
    pending = pending.then(() => fetch(root.dataset.answerUrl, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    })).then((response) => {
      if (!response.ok) throw new Error(response.status);
      return response.json();
    }).then((data) => {
      status.textContent = "حُفظ";
      if (data.answered !== undefined) document.getElementById("answered").textContent = data.answered;
    }).catch(() => { status.textContent = "لم يُحفظ: تحقّق من أن الخادم يعمل ثم أعد الاختيار"; });
    return pending;
  }

  function mark(index) {
    fieldsets.forEach((f, i) => f.classList.toggle("active", i === index));
  }

  function choose(fieldset, value) {
    const input = fieldset.querySelector(`input[value="${value}"]`);
    input.checked = true;
    send({criterion: fieldset.dataset.criterion, value: value});
  }

  fieldsets.forEach((fieldset, index) => {
    fieldset.addEventListener("change", (event) => {
      active = index;
      send({criterion: fieldset.dataset.criterion, value: event.target.value});
    });
  });
  comment.addEventListener("change", () => send({comment: comment.value}));

  function go(url) {
    if (!url) return;
    // Wait for every answer to be stored before leaving the page.
    pending.finally(() => { window.location.href = url; });
  }
  document.getElementById("answers").addEventListener("submit", (event) => {
    event.preventDefault();
    if (comment.value !== comment.defaultValue) send({comment: comment.value});
    go(root.dataset.nextUrl);
  });

  document.addEventListener("keydown", (event) => {
    if (event.target === comment || event.altKey || event.ctrlKey || event.metaKey) return;
    const digit = Number(event.key);
    if (Number.isInteger(digit) && digit >= 1 && digit <= choices.length && fieldsets.length) {
      choose(fieldsets[active], choices[digit - 1]);
      active = Math.min(active + 1, fieldsets.length - 1);
      mark(active);
      event.preventDefault();
    } else if (event.key === "Enter" || event.key === "ArrowLeft") {
      if (comment.value !== comment.defaultValue) send({comment: comment.value});
      go(root.dataset.nextUrl);
      event.preventDefault();
    } else if (event.key === "ArrowRight") {
      go(root.dataset.prevUrl);
      event.preventDefault();
    }
  });
  mark(active);
})();
