/* iSSO progressive enhancement. Every page works without this file: it only
 * adds conveniences on top of server-rendered HTML and forms.
 *
 *  - [data-autofocus-error]: moves focus to an error summary (role="alert")
 *    so keyboard and screen-reader users land on what went wrong.
 *  - .countdown[data-seconds]: counts down once a second; at zero, the
 *    element gets .countdown-expired, any element named by data-enable
 *    (an id) loses its disabled attribute, and data-announce is said in
 *    the polite live region #countdown-announcer.
 *  - form[data-once]: prevents a double submit of the same form.
 *  - [data-poll]: a page waiting for something that happens elsewhere (a
 *    QR code approved in a phone app) asks data-poll (a same-origin URL
 *    answering JSON) every data-poll-interval ms (default 4000, counted
 *    from the previous answer, so requests never come faster) and goes
 *    to the answer's "next" URL when it has one. Without script, the page
 *    offers a button that asks once.
 */
(function () {
	"use strict";

	function focusErrorSummary() {
		var el = document.querySelector("[data-autofocus-error]");
		if (!el) {
			return;
		}
		if (!el.hasAttribute("tabindex")) {
			el.setAttribute("tabindex", "-1");
		}
		el.focus();
	}

	/* Says text politely to screen readers through the page's live
	 * region (#countdown-announcer), once, when a countdown ends. */
	function announce(text) {
		var live = document.getElementById("countdown-announcer");
		if (text && live) {
			live.textContent = text;
		}
	}

	function startCountdown(el) {
		var left = parseInt(el.getAttribute("data-seconds"), 10);
		var target = el.getAttribute("data-enable");
		var timer;
		if (!(left > 0)) {
			return;
		}
		function tick() {
			left -= 1;
			el.textContent = String(Math.max(left, 0));
			if (left <= 0) {
				window.clearInterval(timer);
				el.classList.add("countdown-expired");
				announce(el.getAttribute("data-announce"));
				if (target) {
					var t = document.getElementById(target);
					if (t) {
						t.removeAttribute("disabled");
						t.removeAttribute("aria-disabled");
					}
				}
			}
		}
		timer = window.setInterval(tick, 1000);
	}

	function guardDoubleSubmit(form) {
		form.addEventListener("submit", function (ev) {
			if (form.getAttribute("data-submitted") === "1") {
				ev.preventDefault();
				return;
			}
			form.setAttribute("data-submitted", "1");
		});
	}

	function startPolling(el) {
		var url = el.getAttribute("data-poll");
		var interval = parseInt(el.getAttribute("data-poll-interval"), 10);
		var failures = 0;
		if (!url || typeof window.fetch !== "function") {
			return;
		}
		if (!(interval >= 1000)) {
			interval = 4000;
		}
		function again() {
			window.setTimeout(poll, interval);
		}
		function poll() {
			window.fetch(url, {
				credentials: "same-origin",
				cache: "no-store",
				headers: { Accept: "application/json" }
			}).then(function (res) {
				if (!res.ok) {
					/* The login is gone or was never at this step: the
					 * page's own buttons still work. */
					throw new Error("status " + res.status);
				}
				return res.json();
			}).then(function (data) {
				failures = 0;
				/* Only a path on this site ("/…", never "//" or "/\\"). */
				if (data && typeof data.next === "string" && /^\/(?![\/\\])/.test(data.next)) {
					window.location.assign(data.next);
					return;
				}
				again();
			}).catch(function () {
				failures += 1;
				if (failures < 3) {
					again();
				}
			});
		}
		again();
	}

	function init() {
		var i, list;
		focusErrorSummary();
		list = document.querySelectorAll(".countdown[data-seconds]");
		for (i = 0; i < list.length; i++) {
			startCountdown(list[i]);
		}
		list = document.querySelectorAll("form[data-once]");
		for (i = 0; i < list.length; i++) {
			guardDoubleSubmit(list[i]);
		}
		list = document.querySelectorAll("[data-poll]");
		for (i = 0; i < list.length; i++) {
			startPolling(list[i]);
		}
	}

	if (document.readyState === "loading") {
		document.addEventListener("DOMContentLoaded", init);
	} else {
		init();
	}
})();
