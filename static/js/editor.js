// Maskscope conversation editor: turns with their structured parts (tool calls, tool responses,
// reasoning, an image part), the examples, and the template switches that follow the result.
// Design concession: a turn's structured fields are named by its index (reasoning_2,
// call_name_2 once per call), as app/views/forms.py reads them; this file renumbers those names
// whenever turns move, instead of the form carrying a per-turn count that could drift.
(() => {
  "use strict";

  function changed(form) { form.dispatchEvent(new Event("change", { bubbles: true })); }

  // ---------- turns ----------
  function renumber(list) {
    list.querySelectorAll(":scope > .turn").forEach((turn, i) => {
      turn.querySelector(".turn-no").textContent = `#${i}`;
      turn.querySelectorAll("[data-name]").forEach((el) => { el.name = `${el.dataset.name}_${i}`; });
    });
  }

  // A part shows (and is posted) only under the roles it belongs to.
  function applyRole(turn) {
    const role = turn.querySelector("select[name=role]").value;
    turn.querySelectorAll("fieldset[data-for]").forEach((part) => {
      const on = part.dataset.for === role;
      part.hidden = !on;
      part.disabled = !on;
    });
  }

  let callSerial = 0;
  function nextCallId(form) {
    const taken = new Set(Array.from(form.querySelectorAll("[data-name=call_id]"), (el) => el.value));
    do { callSerial += 1; } while (taken.has(`call_${callSerial}`));
    return `call_${callSerial}`;
  }

  function addCall(turn, call) {
    const node = document.getElementById("call-template").content.firstElementChild.cloneNode(true);
    const fn = call?.function ?? {};
    const args = fn.arguments;
    node.querySelector("[data-name=call_name]").value = fn.name ?? "";
    node.querySelector("[data-name=call_id]").value = call ? (call.id ?? "") : nextCallId(turn.closest("form"));
    node.querySelector("[data-name=call_arguments]").value = args === undefined || args === null ? ""
      : typeof args === "string" ? args : JSON.stringify(args);
    turn.querySelector(".calls").append(node);
    return node;
  }

  const textOf = (content) => (typeof content === "string" ? content
    : (content ?? []).filter((p) => p.type === "text").map((p) => p.text).join(""));

  function fillTurn(node, m) {
    node.querySelector("select[name=role]").value = m.role;
    node.querySelector("textarea[name=content]").value = textOf(m.content);
    const set = (name, value) => { node.querySelector(`[data-name=${name}]`).value = value ?? ""; };
    set("reasoning", m.reasoning_content ?? m.thinking ?? m.reasoning);
    set("tool_name", m.name);
    set("tool_call_id", m.tool_call_id);
    const image = Array.isArray(m.content) ? m.content.find((p) => p.type === "image") : null;
    set("image_width", image?.width);
    set("image_height", image?.height);
    const audio = Array.isArray(m.content) ? m.content.find((p) => p.type === "audio") : null;
    set("audio_seconds", audio?.duration_s);
    (m.tool_calls ?? []).forEach((call) => addCall(node, call));
    applyRole(node);
  }

  function addTurn(list, message) {
    const node = document.getElementById("turn-template").content.firstElementChild.cloneNode(true);
    list.append(node);
    fillTurn(node, message);
    return node;
  }

  // After a user: the answer; after a call: its response; after a response: the answer.
  function nextRole(last) {
    if (!last) return "user";
    const role = last.querySelector("select[name=role]").value;
    if (role === "assistant" && last.querySelector(".calls > .call")) return "tool";
    return role === "user" || role === "tool" ? "assistant" : "user";
  }

  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-turn]");
    if (!btn) return;
    const form = btn.form;
    const list = form.querySelector(".turns");
    const turn = btn.closest(".turn");
    const action = btn.dataset.turn;
    if (action === "add") {
      const node = addTurn(list, { role: nextRole(list.querySelector(":scope > .turn:last-child")), content: "" });
      node.querySelector("textarea[name=content]").focus();
    } else if (action === "remove") {
      const next = turn.nextElementSibling || turn.previousElementSibling;
      turn.remove();
      (next?.querySelector("textarea[name=content]") ?? form.querySelector("button[data-turn=add]"))?.focus();
    } else if (action === "up" && turn.previousElementSibling) {
      turn.previousElementSibling.before(turn);
      btn.focus();
    } else if (action === "down" && turn.nextElementSibling) {
      turn.nextElementSibling.after(turn);
      btn.focus();
    }
    renumber(list);
    changed(form);
  });

  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-call]");
    if (!btn) return;
    const form = btn.form;
    const turn = btn.closest(".turn");
    if (btn.dataset.call === "add") {
      addCall(turn).querySelector("[data-name=call_name]").focus();
    } else {
      btn.closest(".call").remove();
      turn.querySelector("button[data-call=add]").focus();
    }
    renumber(form.querySelector(".turns"));
    changed(form);
  });

  document.addEventListener("change", (e) => {
    if (e.target.matches?.(".turn select[name=role]")) applyRole(e.target.closest(".turn"));
  });

  document.addEventListener("change", (e) => {
    const pick = e.target.closest?.("select[data-examples]");
    if (!pick || !pick.value) return;
    const example = JSON.parse(document.getElementById(pick.dataset.examples).textContent)[pick.value];
    loadConversation(pick.form, example);
    pick.value = "";
    changed(pick.form);
  });

  // A conversation pasted as OpenAI JSON replaces the turns (and the tools and variables boxes).
  function loadConversation(form, data) {
    const messages = Array.isArray(data) ? data : data?.messages;
    if (!Array.isArray(messages) || !messages.every((m) => m && typeof m.role === "string")) {
      throw new Error("give a list of messages, or an object with a \"messages\" list");
    }
    const list = form.querySelector(".turns");
    list.replaceChildren();
    messages.forEach((m) => addTurn(list, m));
    renumber(list);
    const boxes = { tools: data?.tools, chat_template_kwargs: data?.chat_template_kwargs };
    for (const [name, value] of Object.entries(boxes)) {
      const box = form.querySelector(`textarea[name=${name}]`);
      if (!box) continue;
      box.value = value === undefined || value === null ? "" : JSON.stringify(value, null, 1);
      if (box.value) box.closest("details").open = true;
    }
    return messages.length;
  }

  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-paste-load]");
    if (!btn) return;
    const panel = btn.closest("details");
    const status = panel.querySelector("[data-paste-status]");
    try {
      const count = loadConversation(btn.form, JSON.parse(panel.querySelector("textarea[data-paste]").value));
      status.textContent = `Loaded ${count} turn${count === 1 ? "" : "s"}.`;
      changed(btn.form);
    } catch (err) {
      status.textContent = `Not loaded: ${err.message}`;
    }
  });

  // ---------- after each result: template switches and in-place errors ----------
  // The enable_thinking box is offered only when the rendered template reads the variable.
  function followTemplate(result, form) {
    const mark = result.querySelector("[data-reads-thinking]");
    const box = form.querySelector("fieldset[data-thinking]");
    if (!mark || !box) return;
    const reads = mark.dataset.readsThinking === "1";
    if (box.disabled !== reads) return;
    box.hidden = !reads;
    box.disabled = !reads;
    changed(form);  // the template now gets (or no longer gets) the variable: render again
  }

  // The form control an error's field names (messages[1].tool_calls[0].function.arguments...).
  function controlOf(form, field) {
    const turns = form.querySelectorAll(".turns > .turn");
    let m = /^messages\[(\d+)\]\.tool_calls\[(\d+)\]\.function\.(arguments|name)/.exec(field);
    if (m) {
      const call = turns[Number(m[1])]?.querySelectorAll(".call")[Number(m[2])];
      return call?.querySelector(`[data-name=call_${m[3]}]`) ?? turns[Number(m[1])]?.querySelector(".calls");
    }
    m = /^messages\[(\d+)\]\.content\[\d+\]\.(width|height)/.exec(field);
    if (m) return turns[Number(m[1])]?.querySelector(`[data-name=image_${m[2]}]`);
    m = /^messages\[(\d+)\]/.exec(field);
    if (m) return turns[Number(m[1])]?.querySelector("textarea[name=content]");
    return form.querySelector(`[name="${CSS.escape(field)}"]:not([type=hidden])`);
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach((p) => p.remove());
    form.querySelectorAll("[aria-invalid]").forEach((el) => {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    });
  }

  function showError(form, error) {
    const control = error.dataset.field ? controlOf(form, error.dataset.field) : null;
    if (!control) return;
    control.closest("details")?.setAttribute("open", "");
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = "field-error";
    note.textContent = error.querySelector(".message")?.textContent ?? error.textContent.trim();
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", note.id);
    (control.closest("label") ?? control).after(note);
  }

  document.addEventListener("htmx:afterSwap", (e) => {
    const result = e.detail?.target;
    if (!(result instanceof HTMLElement) || result.id !== "result") return;
    const form = document.getElementById("playground") ?? document.querySelector("form[data-permalink]");
    if (!form) return;
    clearErrors(form);
    const error = result.querySelector(".error[data-field]");
    if (error) showError(form, error);
    else followTemplate(result, form);
  });

  // A page rendered on the server (a permalink, the no-JS post) may already hold an error.
  function initial() {
    const form = document.getElementById("playground");
    const error = document.querySelector("#result .error[data-field]");
    if (form && error) showError(form, error);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initial);
  else initial();
})();
