/* iSSO: the natural-person certificate card page (/login/moica-card).
 *
 * The card is reached through the citizen's local card component (the
 * HiPKI local server, or isso-cardagent, at form[data-agent-url]). It
 * sends no CORS headers, so the page opens its /popupForm window: the
 * window asks for the request ({"func":"getTbs"}), the page answers with
 * it, the window talks to the component and posts the reply back. Only
 * messages from that window and the component's origin are listened to.
 *
 *  - 偵測 (#mc-detect): pkcs11info → the readers and whether a card is in
 *    them, in the polite live region #mc-status.
 *  - 下一步 (the form's submit, a user gesture so the window may open):
 *    the card signs the server's one-time challenge (form[data-tbs]) with
 *    the PIN; the PIN field is emptied at once and the PIN is never put
 *    in the form. On success the signature, certificate, card number and
 *    signature type go into hidden fields and the form is posted.
 *
 * The challenge is iSSO's login challenge text exactly as the server made
 * it (the same for the HiPKI local server and isso-cardagent, which in its
 * iSSO profile signs nothing else).
 *
 * Every text shown comes from the page (#mc-messages, in its language).
 * Errors are read from last_error first (it means the same for HiPKI),
 * then ret_code. */
(function () {
	"use strict";

	var RET = {
		OK: 0,
		UNTRUSTED: 0x76000031,
		NO_READER: 0x76000003,
		NO_CARD: 0x76000004,
		PIN_FORMAT: 0x76000005,
		PIN_INCORRECT: 0x76000006,
		PIN_LOCKED: 0x76000007,
		REMOVED: 0x76000008,
		NO_KEY: 0x76000009,
		NOT_LOGIN: 0x7600000B /* isso-cardagent: not this site's login challenge */
	};
	var CKR = {
		PIN_INCORRECT: 0xA0,
		PIN_LOCKED: 0xA4,
		TOKEN_NOT_PRESENT: 0xE0,
		DEVICE_REMOVED: 0x32,
		TOKEN_NOT_RECOGNIZED: 0xE1,
		SESSION_HANDLE_INVALID: 0xB3
	};
	var CKF_TOKEN_INITIALIZED = 0x400;
	/* Once the request was handed over, how long the card may take. */
	var REPLY_WAIT_MS = 90000;

	var form, alertBox, statusBox, detectBtn, nextBtn, pinField, idField;
	var agentUrl, agentOrigin, agentWait, helpUrl;
	var busy = false;
	var detected = null; /* the last detection's lines, shown again after a try */

	function msg(name, vars) {
		var el = document.querySelector('#mc-messages [data-name="' + name + '"]');
		var text = el ? el.textContent : name;
		if (vars) {
			Object.keys(vars).forEach(function (k) {
				text = text.split("{" + k + "}").join(String(vars[k]));
			});
		}
		return text;
	}

	function clearAlert() {
		alertBox.hidden = true;
		alertBox.textContent = "";
	}

	/* Shows text (with the help link when withHelp) in the alert region
	 * and moves focus there, as the server's error summaries do. */
	function showError(text, withHelp) {
		var p = document.createElement("p");
		alertBox.textContent = "";
		p.textContent = text;
		alertBox.appendChild(p);
		if (withHelp && helpUrl) {
			var q = document.createElement("p");
			var a = document.createElement("a");
			a.href = helpUrl;
			a.textContent = msg("help");
			q.appendChild(a);
			alertBox.appendChild(q);
		}
		alertBox.hidden = false;
		alertBox.focus();
	}

	function setStatus(lines) {
		statusBox.textContent = "";
		lines.forEach(function (line) {
			var p = document.createElement("p");
			p.textContent = line;
			statusBox.appendChild(p);
		});
	}

	function setBusy(on) {
		busy = on;
		[detectBtn, nextBtn].forEach(function (b) {
			if (on) {
				b.setAttribute("aria-disabled", "true");
			} else {
				b.removeAttribute("aria-disabled");
			}
		});
	}

	/* Opens the component's window and runs one request through it;
	 * done(reply) or done(null, messageName). Must be called inside a
	 * user gesture (click, submit). */
	function callAgent(request, done) {
		var popup, timer = null, watch = null, state = "hello", finished = false;
		/* The control that opened the component's window: focus comes
		 * back to it when the window closes, unless the answer put it
		 * elsewhere (an error, a field to correct). */
		var returnTo = document.activeElement;

		function finish(reply, problem) {
			if (finished) {
				return;
			}
			finished = true;
			window.removeEventListener("message", onMessage);
			window.clearTimeout(timer);
			window.clearInterval(watch);
			if (request.pin) {
				request.pin = "";
			}
			if (problem && popup && !popup.closed) {
				try {
					popup.close();
				} catch (e) { /* gone already */ }
			}
			done(reply, problem);
			try {
				window.focus();
			} catch (e) { /* not allowed: the browser keeps its own */ }
			if (returnTo && returnTo !== document.body && document.contains(returnTo) &&
				(!document.activeElement || document.activeElement === document.body ||
					document.activeElement === returnTo)) {
				returnTo.focus();
			}
		}

		function onMessage(ev) {
			var data;
			if (ev.source !== popup || ev.origin !== agentOrigin || typeof ev.data !== "string") {
				return;
			}
			try {
				data = JSON.parse(ev.data);
			} catch (e) {
				return;
			}
			if (!data || typeof data !== "object") {
				return;
			}
			if (state === "hello" && data.func === "getTbs") {
				state = "asked";
				window.clearTimeout(timer);
				popup.postMessage(JSON.stringify(request), agentOrigin);
				if (request.pin) {
					request.pin = "";
				}
				timer = window.setTimeout(function () {
					finish(null, "no_answer");
				}, REPLY_WAIT_MS);
				return;
			}
			if (state === "asked" && data.func === request.func) {
				finish(data, null);
			}
		}

		popup = window.open(agentUrl + "/popupForm", "isso-card-agent",
			"popup=yes,width=480,height=360");
		if (!popup) {
			finish(null, "popup_blocked");
			return;
		}
		window.addEventListener("message", onMessage);
		/* The window of a component that is not running never says
		 * getTbs (the browser shows its own error page there). */
		timer = window.setTimeout(function () {
			finish(null, "agent_missing");
		}, agentWait);
		watch = window.setInterval(function () {
			if (popup.closed) {
				finish(null, state === "hello" ? "agent_missing" : "popup_closed");
			}
		}, 300);
	}

	/* The message for a component reply that is not a success. */
	function replyError(r) {
		var last = Number(r.last_error) || 0;
		var ret = Number(r.ret_code) || 0;
		var left = Number(r.pinTriesLeft);
		if (last === CKR.PIN_INCORRECT || (last === 0 && ret === RET.PIN_INCORRECT)) {
			if (left > 0) {
				return { text: msg("wrong_pin", { n: left }), field: pinField };
			}
			return { text: msg("wrong_pin_nocount"), field: pinField };
		}
		if (last === CKR.PIN_LOCKED || (last === 0 && ret === RET.PIN_LOCKED)) {
			return { text: msg("pin_locked"), help: true };
		}
		if (last === CKR.TOKEN_NOT_PRESENT || last === CKR.DEVICE_REMOVED ||
			last === CKR.SESSION_HANDLE_INVALID || last === CKR.TOKEN_NOT_RECOGNIZED ||
			ret === RET.REMOVED) {
			return { text: msg("card_removed") };
		}
		switch (ret) {
		case RET.UNTRUSTED:
			return { text: msg("untrusted"), help: true };
		case RET.NOT_LOGIN:
			return { text: msg("not_login"), help: true };
		case RET.NO_READER:
			return { text: msg("no_reader"), help: true };
		case RET.NO_CARD:
			return { text: msg("no_card") };
		case RET.PIN_FORMAT:
			return { text: msg("pin_format"), field: pinField };
		case RET.NO_KEY:
			return { text: msg("no_key") };
		default:
			return { text: msg("sign_failed", { code: "0x" + ret.toString(16).toUpperCase() }), help: true };
		}
	}

	/* A slot with a card in it that can be a certificate card (an
	 * uninitialised token is a blank card, not a certificate). */
	function hasCard(s) {
		var flags;
		if (!s.token || typeof s.token !== "object") {
			return false;
		}
		flags = Number(s.token.flags);
		return !(flags >= 0) || (flags & CKF_TOKEN_INITIALIZED) !== 0;
	}

	/* The readers and cards of a pkcs11info reply: one line for each
	 * reader holding a card; empty readers one line each when there are
	 * few, else counted in one line (a PC may list many virtual ones). */
	function describeSlots(r) {
		var lines = [];
		var empty = [];
		var slots = Array.isArray(r.slots) ? r.slots : [];
		slots.forEach(function (s) {
			var name = typeof s.slotDescription === "string" ? s.slotDescription.trim() : "";
			var line;
			if (s.token && typeof s.token === "object" && !hasCard(s)) {
				line = msg("card_unknown", { reader: name });
			} else if (hasCard(s)) {
				line = msg("card_found", { reader: name });
				var left = Number(s.token.pinTriesLeft);
				if (s.token.pinTriesLeft !== undefined && left === 0) {
					line += " " + msg("card_locked");
				} else if (left > 0 && left < 3) {
					line += " " + msg("tries_left", { n: left });
				}
			} else {
				empty.push(msg("card_empty", { reader: name }));
				return;
			}
			lines.push(line);
		});
		if (empty.length > 0 && empty.length <= 2) {
			lines = lines.concat(empty);
		} else if (empty.length > 2) {
			lines.push(msg("readers_empty", { n: empty.length }));
		}
		return lines;
	}

	/* With more than one certificate card in the readers, radio buttons
	 * to choose the one to sign with (its slotID goes with MakeSignature);
	 * with one or none, nothing to choose: the component takes the card. */
	function offerChoice(r) {
		var box = document.getElementById("mc-choose");
		var list = document.getElementById("mc-choose-list");
		var cards = (Array.isArray(r.slots) ? r.slots : []).filter(function (s) {
			return hasCard(s) && Number.isInteger(Number(s.slotID));
		});
		if (!box || !list) {
			return;
		}
		list.textContent = "";
		box.hidden = cards.length < 2;
		if (cards.length < 2) {
			return;
		}
		cards.forEach(function (s, i) {
			var id = "mc-slot-" + i;
			var wrap = document.createElement("div");
			var input = document.createElement("input");
			var label = document.createElement("label");
			wrap.className = "check";
			input.type = "radio";
			input.name = "mc_slot";
			input.id = id;
			input.value = String(Number(s.slotID));
			input.checked = i === 0;
			label.htmlFor = id;
			label.textContent = typeof s.slotDescription === "string" ? s.slotDescription.trim() : id;
			wrap.appendChild(input);
			wrap.appendChild(label);
			list.appendChild(wrap);
		});
	}

	function detect() {
		if (busy) {
			return;
		}
		clearAlert();
		setBusy(true);
		setStatus([msg("detecting")]);
		callAgent({ func: "pkcs11info", withcert: false }, function (r, problem) {
			setBusy(false);
			detected = null;
			if (problem) {
				setStatus([msg("detect_failed")]);
				showError(msg(problem), problem === "agent_missing");
				return;
			}
			if (Number(r.ret_code) !== RET.OK) {
				var e = replyError(r);
				setStatus([msg("detect_failed")]);
				showError(e.text, e.help);
				return;
			}
			var lines = describeSlots(r);
			offerChoice(r);
			if (lines.length === 0) {
				detected = [msg("no_reader")];
				setStatus(detected);
				return;
			}
			var anyCard = (r.slots || []).some(hasCard);
			if (!anyCard) {
				lines.push(msg("no_card"));
			}
			detected = lines;
			setStatus(lines);
		});
	}

	function restoreStatus() {
		setStatus(detected || [msg("detect_idle")]);
	}

	function fieldProblem(el, text) {
		el.setAttribute("aria-invalid", "true");
		showError(text);
		el.focus();
	}

	function sign(ev) {
		var id, pin, request, chosen;
		if (form.signature.value) {
			return; /* already signed: the real submit */
		}
		ev.preventDefault();
		if (busy) {
			return;
		}
		clearAlert();
		idField.removeAttribute("aria-invalid");
		pinField.removeAttribute("aria-invalid");
		id = idField.value.replace(/\s+/g, "").toUpperCase();
		if (!/^[A-Z][A-Z0-9][0-9]{8}$/.test(id)) {
			fieldProblem(idField, msg("bad_id"));
			return;
		}
		idField.value = id;
		pin = pinField.value;
		if (!/^[0-9]{6,8}$/.test(pin)) {
			pinField.value = "";
			fieldProblem(pinField, msg("pin_format"));
			return;
		}
		pinField.value = "";
		request = {
			func: "MakeSignature",
			signatureType: "PKCS7",
			tbs: form.getAttribute("data-tbs"),
			tbsEncoding: "NONE",
			hashAlgorithm: "SHA256",
			withCardSN: "true",
			pin: pin,
			nonce: ""
		};
		pin = "";
		chosen = form.querySelector('input[name="mc_slot"]:checked');
		if (chosen) {
			request.slotID = Number(chosen.value);
		}
		setBusy(true);
		setStatus([msg("working")]);
		callAgent(request, function (r, problem) {
			var e;
			if (problem) {
				setBusy(false);
				restoreStatus();
				showError(msg(problem), problem === "agent_missing");
				return;
			}
			if (Number(r.ret_code) !== RET.OK || typeof r.signature !== "string" || r.signature === "") {
				setBusy(false);
				e = replyError(r);
				restoreStatus();
				if (e.field) {
					e.field.setAttribute("aria-invalid", "true");
				}
				showError(e.text, e.help);
				return;
			}
			form.sig_type.value = "PKCS7";
			form.signature.value = r.signature;
			form.certb64.value = typeof r.certb64 === "string" ? r.certb64 : "";
			form.card_sn.value = typeof r.cardSN === "string" ? r.cardSN : "";
			setStatus([msg("sending")]);
			HTMLFormElement.prototype.submit.call(form);
		});
	}

	function init() {
		form = document.getElementById("mc-form");
		if (!form) {
			return;
		}
		alertBox = document.getElementById("mc-alert");
		statusBox = document.getElementById("mc-status");
		detectBtn = document.getElementById("mc-detect");
		nextBtn = document.getElementById("mc-next");
		pinField = document.getElementById("pin");
		idField = document.getElementById("id_number");
		agentUrl = (form.getAttribute("data-agent-url") || "").replace(/\/+$/, "");
		agentOrigin = form.getAttribute("data-agent-origin") || "";
		agentWait = parseInt(form.getAttribute("data-agent-wait"), 10) || 5000;
		helpUrl = form.getAttribute("data-help-url") || "";
		detectBtn.addEventListener("click", detect);
		form.addEventListener("submit", sign);
		/* The PIN leaves with the page, never with history. */
		window.addEventListener("pagehide", function () {
			pinField.value = "";
		});
	}

	if (document.readyState === "loading") {
		document.addEventListener("DOMContentLoaded", init);
	} else {
		init();
	}
})();
