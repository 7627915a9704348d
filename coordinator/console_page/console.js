"use strict";
// The officer console page. Everything shown comes from the coordinator through the local server,
// so it is only ever put in the page as text (textContent), never as HTML.
(function () {
  const FAST_POLL_MS = 2000; // without a live stream
  const RECONNECT_MS = 5000;
  const KEY = "tssctl-console-token";
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(KEY, match[1]);
    history.replaceState(null, "", location.pathname); // the token leaves the address bar
  }
  const token = sessionStorage.getItem(KEY) || "";
  let shown = "";
  let current = null; // the last state shown; streamed cards replace their entry in it
  let live = false;
  let pollMs = FAST_POLL_MS * 5;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function say(text, isError) {
    const m = document.getElementById("message");
    m.textContent = text;
    m.className = isError ? "error" : "";
    m.hidden = !text;
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + token }, cache: "no-store" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const reply = await fetch(path, opts);
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error || reply.statusText);
    return data;
  }

  function row(dl, label, value, cls) {
    dl.append(el("dt", {}, label), el("dd", cls ? { class: cls } : {}, value));
  }

  function card(r) {
    const classes = ["card", r.state].concat(r.verified ? [] : ["mismatch"]);
    const c = el("section", { class: classes.join(" "), id: "req-" + r.request_id, "data-state": r.state });
    c.append(el("h2", {}, el("span", {}, r.request_id), el("span", { class: "state" }, r.state),
      el("span", {}, "policy: " + (r.policy_reason || "-"))));
    if (!r.verified) {
      c.append(el("p", { class: "bad verify" },
        "NOT VERIFIED: " + r.problem + " The console refuses to sign this request."));
    }
    const i = r.intent;
    if (r.verified) {
      c.append(el("p", { class: "ok verify" }, (r.intent && r.intent.kind === "bitcoin_spend" ? "Verified: this spend was rebuilt from its PSBT" :
        "Verified: this intent was rebuilt from the transaction body") + " and is exactly what the coordinator shows."));
    }
    if (i && i.kind === "bitcoin_spend") {
      c.append(spend(r, i));
    } else if (i) {
      const verb = i.call === "transfer" ? "Send" : i.call;
      c.append(el("p", { class: "headline" }, `${verb} ${i.amount} ${i.asset} to ${i.destination}`));
      const dl = el("dl");
      row(dl, "Network", i.network + (i.network_name ? " (" + i.network_name + ")" : ""));
      row(dl, "Amount", `${i.amount} ${i.asset} (${i.amount_base_units} base units)`);
      if (i.contract) row(dl, "Token contract", i.contract);
      const status = i.destination_status + (i.destination_label ? " — " + i.destination_label : "");
      row(dl, "Destination", i.destination);
      row(dl, "Allow-list", status, i.destination_status === "allowed" || i.destination_status === "cold" ? "ok" : "bad");
      row(dl, "Trust ramp", i.trust_ramp);
      if (r.history) row(dl, "Destination history", r.history);
      row(dl, "Max fee", i.fee_cap + ` (gas limit ${i.gas_limit}, max fee per gas ${i.max_fee_per_gas} wei)`);
      row(dl, "Nonce", i.nonce);
      row(dl, "From key", i.key_id + " " + i.path);
      row(dl, "Expires", i.expires_utc);
      row(dl, "Time lock", r.time_lock_until_utc || "none");
      row(dl, "Policy rule", (r.rule || "-") + " (now: " + (r.policy_reason || "-") + ")");
      row(dl, "Approvals so far", r.approved_by.length ? r.approved_by.join(", ") : "none");
      row(dl, "Initiator", r.initiator || "-");
      row(dl, "Intent digest", r.intent_digest, r.verified ? "ok digest" : "bad digest");
      if (r.tx_hash) row(dl, "Transaction", r.tx_hash);
      if (r.error) row(dl, "Error", r.error, "bad");
      c.append(dl);
      c.append(el("details", {}, el("summary", {}, "Decoded intent as signed"), el("pre", {}, i.text)));
    }
    const trail = el("ol");
    for (const o of r.trail) {
      trail.append(el("li", {}, `#${o.seq} ${o.at_utc}: ${o.kind} ${o.event} (${o.actor})`));
    }
    c.append(el("details", { class: "trail" }, el("summary", {}, "Audit trail"),
      el("p", {}, document.getElementById("audit-note").textContent), trail));
    if (r.state === "pending_approval") {
      const approve = el("button", { type: "button", class: "approve" }, r.approved_by_me ? "Approved by you" : "Approve");
      approve.disabled = r.approved_by_me;
      approve.addEventListener("click", () => act("approve", { request_id: r.request_id, intent_digest: r.intent_digest }));
      const reason = el("input", { type: "text", placeholder: "reason for rejecting", maxlength: "500", class: "reason" });
      const reject = el("button", { type: "button", class: "reject" }, "Reject");
      reject.addEventListener("click", () => act("reject", { request_id: r.request_id, intent_digest: r.intent_digest, reason: reason.value }));
      c.append(el("div", { class: "actions" }, approve, reason, reject));
    }
    return c;
  }

  // A Bitcoin spend: every output (payouts with their allow-list status and rule, change back to
  // the key by its path), the inputs and the fee, as rebuilt from the PSBT by the console.
  function spend(r, i) {
    const box = el("div", { class: "spend" });
    const first = i.outputs.find((o) => !o.change);
    const to = i.payouts === 1 && first ? ` to ${first.address}` : ` in ${i.payouts} payouts`;
    box.append(el("p", { class: "headline" }, `Send ${i.amount} ${i.asset}${to}`));
    const dl = el("dl");
    row(dl, "Network", i.network + (i.network_name ? " (" + i.network_name + ")" : ""));
    for (const o of i.outputs) {
      if (o.change) {
        row(dl, "Change (ours)", `${o.amount} to ${o.address} (key path ${o.path})`, "ok");
      } else {
        const status = o.status + (o.label ? " — " + o.label : "");
        row(dl, "Payout", `${o.amount} to ${o.address}`);
        row(dl, "Payout allow-list", status, o.status === "allowed" || o.status === "cold" ? "ok" : "bad");
        if (o.rule) row(dl, "Payout rule", o.rule);
      }
    }
    if (r.history) row(dl, "First payee's history", r.history);
    row(dl, "Fee", `${i.fee} for ${i.vsize} vbytes`);
    row(dl, "Inputs", `${i.inputs} input(s), ${i.inputs_total} in all`);
    row(dl, "From key", i.key_id);
    row(dl, "Expires", i.expires_utc);
    row(dl, "Time lock", r.time_lock_until_utc || "none");
    row(dl, "Policy now", r.policy_reason || "-");
    row(dl, "Approvals so far", r.approved_by.length ? r.approved_by.join(", ") : "none");
    row(dl, "Initiator", r.initiator || "-");
    row(dl, "Intent digest", r.intent_digest, r.verified ? "ok digest" : "bad digest");
    if (r.tx_hash) row(dl, "Transaction id", r.tx_hash);
    if (r.error) row(dl, "Error", r.error, "bad");
    box.append(dl, el("details", {}, el("summary", {}, "Decoded spend as signed"), el("pre", {}, i.text)));
    return box;
  }

  function showStatus() {
    if (!current) return;
    const s = current;
    document.getElementById("status").textContent =
      `policy v${s.policy_version} · updated ${s.now_utc} · ` + (live ? "live" : "polling") +
      (s.policy_problem ? " · " + s.policy_problem : "");
  }

  function render(s) {
    current = s;
    pollMs = (s.poll_seconds || 15) * 1000;
    document.getElementById("officer").textContent = "— " + s.officer;
    document.getElementById("audit-note").textContent = s.audit_trail_note;
    const frozen = s.frozen.map((f) => `${f.scope} (by ${f.by} since ${f.since_utc})`).join(", ");
    document.getElementById("frozen").textContent = frozen ? "FROZEN: " + frozen : "";
    showStatus();
    const key = JSON.stringify([s.requests, s.frozen, s.policy_problem]);
    if (key === shown) return; // unchanged: keep what the officer is typing
    shown = key;
    const main = document.getElementById("requests");
    main.replaceChildren(...(s.requests.length ? s.requests.map(card) : [el("p", {}, "No requests.")]));
  }

  async function refresh() {
    try {
      render(await api("GET", "/api/state"));
    } catch (e) {
      document.getElementById("status").textContent = "not connected: " + e.message;
    }
  }

  // A streamed card (the console rebuilt and checked it on a Watch transition) replaces its own.
  function update(card) {
    if (!current) return;
    const i = current.requests.findIndex((r) => r.request_id === card.request_id);
    if (i < 0) return; // a request not listed yet arrives with the next poll
    const requests = current.requests.slice();
    requests[i] = card;
    render(Object.assign({}, current, { requests }));
  }

  function dispatch(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (event === "request" && data.length) update(JSON.parse(data.join("\n")));
  }

  // EventSource cannot send the Authorization header (and the token stays out of URLs), so the
  // stream is read with fetch() and its body reader; when it ends, poll fast and reconnect.
  async function stream() {
    try {
      const reply = await fetch("/api/events", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (!reply.ok || !reply.body) throw new Error(reply.statusText);
      live = true;
      showStatus();
      if (current) refresh(); // a reconnect: what changed while the stream was down
      const reader = reply.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      // fall through: polling covers the page until the stream is back
    }
    if (live) schedule(FAST_POLL_MS); // the stream dropped: poll fast now, not at the slow pace
    live = false;
    showStatus();
    setTimeout(stream, RECONNECT_MS);
  }

  let timer = 0;
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  async function poll() {
    await refresh();
    schedule(live ? pollMs : FAST_POLL_MS);
  }

  function delivery(d) {
    const parts = [];
    if (d.coordinator && !d.coordinator.skipped) {
      parts.push("coordinator " + (d.coordinator.confirmed ? "confirmed" : "NOT confirmed: " + d.coordinator.error));
    }
    for (const [party, c] of Object.entries(d.signers || {})) {
      parts.push(`signer ${party} ` + (c.confirmed ? "confirmed" : "NOT confirmed: " + c.error));
    }
    return parts.join("; ") + ".";
  }

  async function act(what, body) {
    say("", false);
    try {
      const d = await api("POST", "/api/" + what, body);
      if (what === "freeze") {
        say(`Frozen ${d.scope} (order issued at ${d.issued_at}): ` + delivery(d), !d.ok);
      } else {
        say(`${what === "approve" ? "Approved" : "Rejected"} ${body.request_id}: now ${d.state}.`, false);
      }
    } catch (e) {
      say(`Refused: ${e.message}`, true);
    }
    shown = "";
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!token) say("No session token: open the exact URL tssctl officer console printed.", true);
    document.getElementById("freeze").addEventListener("click", () => act("freeze", { scope: "*" }));
    if (token) stream();
    poll();
  });
})();
