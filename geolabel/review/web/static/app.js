// geolabel review: reviewer token, decision form with keyboard shortcuts, admin actions.
// Text from the server is only ever inserted with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "geolabel-review-token";

function token() {
  return window.localStorage.getItem(TOKEN_KEY) || "";
}

function setStatus(el, text, cls) {
  el.textContent = text;
  el.className = cls || "";
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token()},
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  return {status: response.status, data: data};
}

function initToken() {
  const form = document.getElementById("token-form");
  if (!form) return;
  const input = document.getElementById("token");
  const state = document.getElementById("token-state");
  setStatus(state, token() ? "signed in" : "read-only");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.localStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    setStatus(state, token() ? "signed in" : "read-only");
  });
}

function proposalFrom(form) {
  const kind = form.elements["proposal_kind"].value;
  if (!kind) return null;
  const classes = form.elements["proposal_classes"].value.split(",")
    .map((s) => s.trim()).filter((s) => s.length > 0);
  const proposal = {kind: kind, classes: classes, text: form.elements["proposal_text"].value};
  const newClass = form.elements["proposal_new_class"].value.trim();
  const definition = form.elements["proposal_definition"].value.trim();
  if (newClass) proposal.new_class = newClass;
  if (definition) proposal.definition = definition;
  return proposal;
}

function initDecision() {
  const form = document.getElementById("decision");
  if (!form) return;
  const status = document.getElementById("decision-status");
  const rationale = document.getElementById("rationale");

  async function submit() {
    const checked = form.querySelector("input[name=label]:checked");
    if (!checked) { setStatus(status, "Choose a label first (press its key).", "conflict"); return; }
    if (!rationale.value.trim()) { setStatus(status, "Write a rationale first.", "conflict"); rationale.focus(); return; }
    if (!token()) { setStatus(status, "Sign in with your reviewer token to decide.", "conflict"); return; }
    const body = {
      item: form.dataset.item,
      label: checked.value,
      rationale: rationale.value.trim(),
      version: parseInt(form.dataset.version, 10),
      proposal: proposalFrom(form),
    };
    setStatus(status, "Saving…", "");
    const result = await postJson("/api/decisions", body);
    if (result.status === 201) {
      form.dataset.version = String(result.data.version);
      setStatus(status, "Saved: " + result.data.label + " (" + result.data.review_id + ").", "ok");
      form.dataset.saved = "yes";
    } else if (result.status === 409) {
      setStatus(status, "Conflict: " + (result.data.error || "someone else decided this item") +
        " Reload the page to see their decision.", "conflict");
    } else {
      setStatus(status, "Not saved (" + result.status + "): " + (result.data.error || "error"), "conflict");
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  document.addEventListener("keydown", (event) => {
    const typing = event.target && (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT" || event.target.tagName === "SELECT");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); return; }
    if (event.key === "Escape" && typing) { event.target.blur(); return; }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const radio = form.querySelector("input[name=label][data-key='" + CSS.escape(event.key) + "']");
    if (radio) { radio.checked = true; event.preventDefault(); return; }
    if (event.key === "n" && form.dataset.next) { window.location.href = "/items/" + encodeURIComponent(form.dataset.next); }
  });
}

function initAdmin() {
  const status = document.getElementById("admin-status");
  if (!status) return;
  const applyAll = document.getElementById("apply-all");
  if (applyAll) {
    applyAll.addEventListener("click", async () => {
      const result = await postJson("/api/proposals/apply", {});
      if (result.status === 200) {
        setStatus(status, "Applied: taxonomy v" + result.data.to_version + ", " + result.data.relabel.length + " item(s) to relabel. Reload to see it.", "ok");
      } else {
        setStatus(status, "Not applied (" + result.status + "): " + (result.data.error || "error"), "conflict");
      }
    });
  }
  document.querySelectorAll("button.reject").forEach((button) => {
    button.addEventListener("click", async () => {
      const id = button.dataset.proposal;
      const result = await postJson("/api/proposals/" + encodeURIComponent(id) + "/reject", {});
      setStatus(status, result.status === 200 ? "Rejected " + id + "." : "Not rejected (" + result.status + "): " + (result.data.error || "error"), result.status === 200 ? "ok" : "conflict");
    });
  });
}

document.addEventListener("DOMContentLoaded", () => { initToken(); initDecision(); initAdmin(); });
