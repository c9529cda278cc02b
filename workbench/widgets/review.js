// workbench review widget front end (anywidget ESM; no network, no dependencies).
//
// Safety rule: markup is inserted ONLY from traits built by workbench._html in the
// kernel (header_html, trace_html, page.html). Everything else (category names,
// notes, corrected output, messages) goes into the page via textContent / .value.

const STATES = {
  new: "Not labelled",
  draft: "Unsaved changes",
  saving: "Saving…",
  saved: "Saved",
  error: "NOT SAVED — retry",
};

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function kbd(key) {
  return h("kbd", null, key);
}

function isTyping(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
  return tag === "INPUT" && target.type !== "checkbox" && target.type !== "button";
}

function render({ model, el }) {
  const send = (msg) => model.send(msg);
  const root = h("div", "wbr");
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true"); // JupyterLab: do not run notebook shortcuts here
  const header = h("div", "wbr-header");
  const main = h("div", "wbr-main");
  const trace = h("div", "wbr-trace");
  const panel = h("div", "wbr-panel");
  main.append(trace, panel);

  // verdicts
  const verdictBox = h("div");
  const verdictRow = h("div", "wbr-verdicts");
  verdictBox.append(h("div", "wbr-label", "Verdict"), verdictRow);
  const verdictButtons = new Map();
  for (const v of model.get("verdicts")) {
    const button = h("button", `wbr-btn wbr-verdict wbr-${v.tone}`);
    button.type = "button";
    if (v.key) button.append(kbd(v.key));
    button.append(document.createTextNode(v.value));
    button.addEventListener("click", () => act({ type: "click", action: "verdict", value: v.value }));
    verdictButtons.set(v.value, button);
    verdictRow.append(button);
  }

  // categories
  const catBox = h("div");
  const catLabel = h("div", "wbr-label");
  catLabel.append(h("span", null, "Failure categories"), h("span", null, "1–9"));
  const chips = h("div", "wbr-chips");
  const addRow = h("div", "wbr-add");
  const addInput = h("input");
  addInput.type = "text";
  addInput.placeholder = "new category (name: definition)";
  const addButton = h("button", "wbr-btn", "Add");
  addButton.type = "button";
  addRow.append(addInput, addButton);
  catBox.append(catLabel, chips, addRow);
  const addCategory = () => {
    const raw = addInput.value.trim();
    if (!raw) return;
    const cut = raw.indexOf(":");
    const name = cut > 0 ? raw.slice(0, cut).trim() : raw;
    const definition = cut > 0 ? raw.slice(cut + 1).trim() : "";
    addInput.value = "";
    act({ type: "add_category", name, definition });
  };
  addButton.addEventListener("click", addCategory);
  addInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      addCategory();
    }
  });

  // note, corrected output, escalate
  const noteBox = h("div");
  const note = h("textarea", "wbr-note");
  note.placeholder = "What went wrong first? (free text)";
  noteBox.append(h("div", "wbr-label", "Note"), note);
  const corrBox = h("div");
  const corrected = h("textarea", "wbr-corrected");
  corrected.rows = 4;
  const corrHint = h("div", "wbr-muted");
  corrBox.append(h("div", "wbr-label", "Corrected output"), corrected, corrHint);
  const escLabel = h("label", "wbr-check");
  const escalate = h("input");
  escalate.type = "checkbox";
  escLabel.append(escalate, document.createTextNode("Escalate"));

  // save state and navigation
  const saveRow = h("div", "wbr-save");
  const state = h("span", "wbr-state");
  const saveButton = h("button", "wbr-btn", "Save");
  saveButton.type = "button";
  saveButton.title = "Save the label (Ctrl+Enter in a text field)";
  saveRow.append(state, saveButton);
  const message = h("div", "wbr-state-msg");
  const nav = h("div", "wbr-nav");
  const navButton = (label, key, action) => {
    const button = h("button", "wbr-btn");
    button.type = "button";
    button.append(kbd(key), document.createTextNode(label));
    button.addEventListener("click", () => act({ type: "click", action }));
    nav.append(button);
    return button;
  };
  const prevButton = navButton("prev", "k", "previous");
  const nextButton = navButton("next", "j", "next");
  navButton("skip", "s", "skip");
  navButton("undo", "u", "undo");
  const helpButton = h("button", "wbr-btn");
  helpButton.type = "button";
  helpButton.append(kbd("?"), document.createTextNode("keys"));
  nav.append(helpButton);
  panel.append(verdictBox, catBox, noteBox, corrBox, escLabel, saveRow, message, nav);

  // help overlay
  const help = h("div", "wbr-help wbr-hidden");
  const buildHelp = () => {
    help.replaceChildren(h("h4", null, "Keyboard (click the widget first; keys are ignored while typing)"));
    const table = h("table");
    const rows = model.get("verdicts").filter((v) => v.key).map((v) => [v.key, `${v.value}: save and go to the next trace`]);
    rows.push(["1 – 9", "toggle a failure category"], ["j  →", "next trace"], ["k  ←", "previous trace (edit its label)"],
      ["s", "skip"], ["u", "undo the last label"], ["Ctrl+Enter", "save from a text field"], ["Esc", "leave a text field"], ["?", "this help"]);
    for (const [key, what] of rows) {
      const tr = h("tr");
      const td = h("td");
      td.append(kbd(key));
      tr.append(td, h("td", null, what));
      table.append(tr);
    }
    help.append(table);
  };
  buildHelp();
  const toggleHelp = (show) => help.classList.toggle("wbr-hidden", show === undefined ? undefined : !show);
  helpButton.addEventListener("click", () => toggleHelp());
  help.addEventListener("click", () => toggleHelp(false));

  root.append(header, main, help);
  el.append(root);

  // text fields: debounced "set" messages, flushed before any action
  const timers = new Map();
  const flush = () => {
    for (const [field, timer] of timers) {
      clearTimeout(timer);
      send({ type: "set", field, value: field === "note" ? note.value : corrected.value });
    }
    timers.clear();
  };
  const debounce = (field) => {
    clearTimeout(timers.get(field));
    timers.set(field, setTimeout(() => {
      timers.delete(field);
      send({ type: "set", field, value: field === "note" ? note.value : corrected.value });
    }, 400));
  };
  note.addEventListener("input", () => debounce("note"));
  corrected.addEventListener("input", () => debounce("corrected_output"));
  escalate.addEventListener("change", () => act({ type: "set", field: "escalate", value: escalate.checked }));
  saveButton.addEventListener("click", () => act({ type: "click", action: "submit" }));

  function act(msg) {
    flush();
    send(msg);
  }

  // keyboard
  const keyHandled = (key) => {
    if (/^[1-9]$/.test(key)) return true;
    if (["j", "k", "s", "u", "ArrowLeft", "ArrowRight", "Enter"].includes(key)) return true;
    return model.get("verdicts").some((v) => v.key === key);
  };
  root.addEventListener("keydown", (ev) => {
    const target = ev.target;
    if (isTyping(target)) {
      if (ev.key === "Escape") {
        target.blur();
        root.focus({ preventScroll: true });
        ev.preventDefault();
      } else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && target !== addInput) {
        ev.preventDefault();
        act({ type: "key", key: "Enter" });
      }
      ev.stopPropagation();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "?") {
      toggleHelp();
    } else if (ev.key === "Escape") {
      toggleHelp(false);
    } else if (ev.key === "Enter" && target && target.tagName === "BUTTON") {
      return; // let the button's own click run
    } else if (keyHandled(ev.key)) {
      act({ type: "key", key: ev.key });
    } else {
      return;
    }
    ev.preventDefault();
    ev.stopPropagation();
  });
  root.addEventListener("click", (ev) => {
    const more = ev.target.closest && ev.target.closest(".wbr-more");
    if (more && trace.contains(more)) {
      more.disabled = true;
      more.textContent = "loading…";
      send({ type: "more", field: more.dataset.field, offset: Number(more.dataset.offset) });
      return;
    }
    const interactive = ev.target.closest && ev.target.closest("button, input, textarea, summary, a, label");
    const selection = window.getSelection ? window.getSelection() : null;
    if (!interactive && (!selection || selection.isCollapsed)) root.focus({ preventScroll: true });
  });

  // model -> view
  const showHeader = () => {
    header.innerHTML = model.get("header_html");
  };
  const showTrace = () => {
    trace.innerHTML = model.get("trace_html");
    trace.scrollTop = 0;
  };
  const showPage = () => {
    const page = model.get("page");
    if (!page || !page.field || page.trace_id !== model.get("trace_id")) return;
    const box = trace.querySelector(`.wbr-field[data-field="${CSS.escape(page.field)}"]`);
    if (!box) return;
    const pre = box.querySelector("pre");
    pre.insertAdjacentHTML("beforeend", page.html);
    const button = box.querySelector(".wbr-more");
    if (!button) return;
    if (page.remaining > 0) {
      button.dataset.offset = String(page.next_offset);
      button.disabled = false;
      button.textContent = `show more · ${Number(page.remaining).toLocaleString()} more characters`;
    } else {
      button.remove();
    }
  };
  const showVerdict = () => {
    const current = model.get("verdict");
    for (const [value, button] of verdictButtons) button.classList.toggle("wbr-on", value === current);
  };
  const showCategories = () => {
    const selected = new Set(model.get("selected"));
    chips.replaceChildren();
    for (const cat of model.get("categories")) {
      const chip = h("button", "wbr-chip" + (selected.has(cat.name) ? " wbr-on" : ""));
      chip.type = "button";
      if (cat.number) chip.append(kbd(String(cat.number)));
      chip.append(document.createTextNode(cat.name));
      chip.title = cat.definition || "";
      chip.addEventListener("click", () => act({ type: "click", action: "category", value: cat.name }));
      chips.append(chip);
    }
    if (!model.get("categories").length) chips.append(h("span", "wbr-muted", "none yet: add one below"));
  };
  const showText = (force) => {
    if (force || document.activeElement !== note) note.value = model.get("note");
    if (force || document.activeElement !== corrected) corrected.value = model.get("corrected_output");
    const hint = model.get("corrected_hint");
    corrHint.textContent = hint;
    corrected.disabled = Boolean(hint);
    escalate.checked = model.get("escalate");
  };
  const showState = () => {
    const s = model.get("save_state");
    state.textContent = STATES[s] || s;
    state.className = `wbr-state wbr-state-${s}`;
    saveButton.textContent = s === "error" ? "Retry save" : "Save";
    message.textContent = s === "saved" || s === "new" ? "" : model.get("message");
    if (s !== "error" && model.get("message") && s !== "saved") message.textContent = model.get("message");
    prevButton.disabled = model.get("at_start");
    nextButton.disabled = model.get("at_end");
  };
  const onTrace = () => {
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
    showText(true);
  };

  const handlers = [
    ["change:header_html", showHeader],
    ["change:trace_html", showTrace],
    ["change:page", showPage],
    ["change:verdict", showVerdict],
    ["change:categories", showCategories],
    ["change:selected", showCategories],
    ["change:note", () => showText(false)],
    ["change:corrected_output", () => showText(false)],
    ["change:corrected_hint", () => showText(false)],
    ["change:escalate", () => showText(false)],
    ["change:trace_id", onTrace],
    ["change:save_state", showState],
    ["change:message", showState],
    ["change:at_start", showState],
    ["change:at_end", showState],
  ];
  for (const [event, fn] of handlers) model.on(event, fn);
  showHeader();
  showTrace();
  showVerdict();
  showCategories();
  showText(true);
  showState();

  return () => {
    for (const [event, fn] of handlers) model.off(event, fn);
    for (const timer of timers.values()) clearTimeout(timer);
  };
}

export default { render };
