/* iSSO progressive enhancement. Every page works without this file: it only
 * adds conveniences on top of server-rendered HTML and forms.
 *
 *  - [data-autofocus-error]: moves focus to an error summary (role="alert")
 *    so keyboard and screen-reader users land on what went wrong.
 *  - .countdown[data-seconds]: counts down once a second; at zero, the
 *    element gets .countdown-expired, any element named by data-enable
 *    (an id) loses its disabled attribute, and data-announce is said in
 *    the polite live region #countdown-announcer.
 *  - #error-summary a[href^="#"]: a link of the error summary moves focus
 *    to its field (not only scrolls to it).
 *  - [data-timer]: a time limit (a QR code, an SMS code) shown as text of
 *    its own: its .timer-secs counts down once a second without being a
 *    live region, so nothing is said while it ticks. When data-warn-at
 *    seconds or fewer are left (at once if the limit is already that
 *    short), data-warn is said once in the polite live region
 *    #countdown-announcer; at zero, data-expired is said there, the element
 *    gets .timer-expired, polling on the page stops (nothing reloads under
 *    the message) unless data-keep-polling (the server then sends the page
 *    to one whose message takes focus), and focus moves to the element named by data-focus (an
 *    id: the action that starts again) unless the citizen is typing.
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

	/* An error summary's links move focus to their field. */
	function linkErrorSummary() {
		var list = document.querySelectorAll("#error-summary a[href^='#']");
		var i;
		function follow(ev) {
			var target = document.getElementById(this.getAttribute("href").slice(1));
			if (target) {
				ev.preventDefault();
				target.focus();
			}
		}
		for (i = 0; i < list.length; i++) {
			list[i].addEventListener("click", follow);
		}
	}

	var pollingStopped = false;
	/* The expiry of each [data-timer] not marked data-keep-polling: run
	 * when the server says "expired" first (the page's own count is
	 * late by the time the page took to arrive, or was slowed down in a
	 * background tab), so the message comes from this page either way. */
	var expireNow = [];

	function startTimer(el) {
		var left = parseInt(el.getAttribute("data-timer"), 10);
		var warnAt = parseInt(el.getAttribute("data-warn-at"), 10);
		var secs = el.querySelector(".timer-secs");
		var warned = false;
		var timer;
		if (!(left > 0)) {
			return;
		}
		if (!(warnAt > 0)) {
			warnAt = 20;
		}
		function typing() {
			var a = document.activeElement;
			return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
		}
		function check() {
			if (!warned && left <= warnAt && left > 0) {
				warned = true;
				el.classList.add("timer-warning");
				announce(el.getAttribute("data-warn"));
			}
		}
		function tick() {
			left -= 1;
			if (secs) {
				secs.textContent = String(Math.max(left, 0));
			}
			check();
			if (left <= 0 && timer !== null) {
				var focus = el.getAttribute("data-focus");
				var target = focus ? document.getElementById(focus) : null;
				window.clearInterval(timer);
				timer = null;
				el.classList.remove("timer-warning");
				el.classList.add("timer-expired");
				if (!el.hasAttribute("data-keep-polling")) {
					pollingStopped = true;
				}
				if (el.getAttribute("data-expired")) {
					/* Seen as well as heard: the sentence replaces "0". */
					el.textContent = el.getAttribute("data-expired");
				}
				announce(el.getAttribute("data-expired"));
				if (target && !typing()) {
					target.focus();
				}
			}
		}
		check();
		timer = window.setInterval(tick, 1000);
		if (!el.hasAttribute("data-keep-polling")) {
			expireNow.push(function () {
				if (timer !== null) {
					left = 1;
					tick();
				}
			});
		}
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
			if (!pollingStopped) {
				window.setTimeout(poll, interval);
			}
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
				if (pollingStopped) {
					/* The time limit ended: the page says so and
					 * offers the next step; nothing reloads under it. */
					return;
				}
				if (data && data.state === "expired" && expireNow.length > 0) {
					/* This page says it, and offers a new code. */
					expireNow.forEach(function (f) { f(); });
					return;
				}
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
		linkErrorSummary();
		list = document.querySelectorAll("[data-timer]");
		for (i = 0; i < list.length; i++) {
			startTimer(list[i]);
		}
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
