/* iSSO: the NHI card pages (健保卡晶片驗證) talk to the card component on
 * the citizen's PC — the NHI's own or isso-cardagent — over its local
 * WebSocket (data-nhi-url), one text command at a time:
 *
 *  - form[data-nhi-card="read"]   reads the card (GetBasic) on load and on
 *    the detect button, shows the card's presence and fills card_no;
 *  - form[data-nhi-card="sign"]   on submit has the card sign the page's
 *    one-time random (H_Sign) and the component encrypt the registration
 *    password with it to the NHI service's key (EnCrypt), clears the
 *    password field and posts only the signature and the ciphertext.
 *
 * Every text shown comes from the page (#nhi-messages, in its language). */
(function () {
	"use strict";

	var TIMEOUT_MS = 8000;

	function msg(key) {
		var el = document.querySelector('#nhi-messages [data-msg="' + key + '"]');
		return el ? el.textContent : key;
	}

	function show(form, text) {
		var box = form.querySelector("#nhi-alert");
		if (!box)
			return;
		box.querySelector("p").textContent = text;
		/* A live alert only while it has something to say. */
		box.setAttribute("role", "alert");
		box.hidden = false;
		box.setAttribute("tabindex", "-1");
		box.focus();
	}

	function hide(form) {
		var box = form.querySelector("#nhi-alert");
		if (box) {
			box.hidden = true;
			box.removeAttribute("role");
		}
	}

	function status(text) {
		var el = document.getElementById("nhi-status");
		if (el)
			el.textContent = text;
	}

	/* The component's error codes, as message keys. */
	function failure(ret) {
		switch (ret) {
		case -3: return "no_reader";
		case -4: return "no_card";
		case -5: return "removed";
		case -2: return "bad_password";
		default: return "card_error";
		}
	}

	/* Opens the socket, sends each command in turn and resolves with the
	 * parsed replies; rejects with a message key. */
	function exchange(url, commands) {
		return new Promise(function (resolve, reject) {
			var ws, replies = [], done = false, timer;

			function finish(err) {
				if (done)
					return;
				done = true;
				clearTimeout(timer);
				try { ws.close(); } catch (e) { /* already closed */ }
				if (err)
					reject(err);
				else
					resolve(replies);
			}
			try {
				ws = new WebSocket(url);
			} catch (e) {
				reject("no_component");
				return;
			}
			timer = setTimeout(function () { finish("no_component"); }, TIMEOUT_MS);
			ws.onopen = function () { ws.send(commands[0]); };
			ws.onerror = function () { finish(replies.length ? "card_error" : "no_component"); };
			ws.onclose = function () { finish(replies.length === commands.length ? null : "no_component"); };
			ws.onmessage = function (ev) {
				var reply;
				try {
					reply = JSON.parse(ev.data);
				} catch (e) {
					finish("card_error");
					return;
				}
				if (!reply || reply.ret !== 0) {
					finish(failure(reply ? reply.ret : 0));
					return;
				}
				replies.push(reply);
				if (replies.length === commands.length)
					finish(null);
				else
					ws.send(commands[replies.length]);
			};
		});
	}

	function initRead(form) {
		var url = form.getAttribute("data-nhi-url");
		var field = form.querySelector('input[name="card_no"]');
		var button = form.querySelector("[data-nhi-detect]");
		var reading = null;

		function read() {
			if (reading)
				return reading;
			field.value = "";
			status(msg("connecting"));
			reading = exchange(url, ["GetBasic"]).then(function (r) {
				var no = String(r[0].card_no || "");
				if (!/^[0-9]{12}$/.test(no))
					throw "card_error";
				field.value = no;
				status(msg("found").replace("%s", no.slice(-4)));
				reading = null;
				return no;
			}, function (key) {
				status(msg(key));
				reading = null;
				throw key;
			});
			return reading;
		}
		if (button)
			button.addEventListener("click", function () {
				hide(form);
				read().catch(function () { /* shown in the status line */ });
			});
		form.addEventListener("submit", function (ev) {
			var id = form.querySelector('input[name="id_number"]').value.trim();
			if (field.value)
				return;
			ev.preventDefault();
			if (!/^[A-Za-z][0-9A-Da-d][0-9]{8}$/.test(id)) {
				show(form, msg("bad_id"));
				return;
			}
			hide(form);
			read().then(function () {
				form.submit();
			}, function (key) {
				show(form, msg(key));
			});
		});
		read().catch(function () { /* shown in the status line */ });
	}

	function initSign(form) {
		var url = form.getAttribute("data-nhi-url");
		var random = form.getAttribute("data-random");
		var cardNo = form.getAttribute("data-card-no");
		var pw = form.querySelector("#nhi-password");
		var busy = false;

		form.addEventListener("submit", function (ev) {
			var password = pw.value;
			ev.preventDefault();
			if (busy)
				return;
			if (!/^[\x20-\x7e]{6,12}$/.test(password)) {
				show(form, msg("bad_password"));
				pw.focus();
				return;
			}
			busy = true;
			hide(form);
			status(msg("signing"));
			exchange(url, [
				"H_Sign?Random=" + encodeURIComponent(random),
				"EnCrypt?Pwd=" + encodeURIComponent(password) + "&Random=" + encodeURIComponent(random),
			]).then(function (r) {
				pw.value = "";
				password = "";
				if (r[0].card_no !== cardNo || r[1].card_no !== cardNo)
					throw "other_card";
				form.elements.signature.value = r[0].signature;
				form.elements.cert.value = r[0].cert;
				form.elements.blob.value = r[1].blob;
				form.elements.signed_card_no.value = r[0].card_no;
				form.submit();
			}).catch(function (key) {
				pw.value = "";
				password = "";
				busy = false;
				show(form, msg(typeof key === "string" ? key : "card_error"));
			});
		});
	}

	function init() {
		var f = document.querySelector('form[data-nhi-card="read"]');
		if (f)
			initRead(f);
		f = document.querySelector('form[data-nhi-card="sign"]');
		if (f)
			initSign(f);
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", init);
	else
		init();
})();
