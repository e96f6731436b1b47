// Herald opt-in script. On the hosted page it drives the button; on your own
// site include
//   <div id="herald-optin" data-app="default" data-list="news" data-api="https://herald.example.com"
//        data-vapid-key="..."><button id="subscribe">Get notifications</button><p id="status"></p></div>
//   <script src="https://herald.example.com/embed.js"></script>
// and serve a copy of /sw.js from the root of your site.
(function () {
  "use strict";

  // Texts by language: the box's data-lang, else the page's, else the
  // browser's; English when none of them is German.
  const texts = {
    en: {
      noSupport: "This browser cannot receive web notifications.",
      blocked: "Notifications are blocked. Allow them in your browser's site settings to subscribe.",
      asking: "Asking your browser…",
      slow: "Your browser has not answered yet. If it shows no question, check that notifications are allowed for this site, then try again.",
      subscribed: "You are subscribed.",
      almost: "Almost done: confirm with the notification we just sent you.",
      failed: "That did not work:",
    },
    de: {
      noSupport: "Dieser Browser kann keine Web-Benachrichtigungen empfangen.",
      blocked: "Benachrichtigungen sind blockiert. Erlauben Sie sie in den Website-Einstellungen Ihres Browsers, um sich anzumelden.",
      asking: "Ihr Browser wird gefragt…",
      slow: "Ihr Browser hat noch nicht geantwortet. Wenn er keine Frage zeigt, prüfen Sie, ob Benachrichtigungen für diese Website erlaubt sind, und versuchen Sie es erneut.",
      subscribed: "Sie sind angemeldet.",
      almost: "Fast geschafft: Bestätigen Sie mit der Benachrichtigung, die wir Ihnen gerade geschickt haben.",
      failed: "Das hat nicht geklappt:",
    },
  };
  function textsFor(lang) {
    return (lang || "").toLowerCase().startsWith("de") ? texts.de : texts.en;
  }
  // A browser whose push service cannot be reached can leave subscribe()
  // pending for a long time; after this long the person is told why.
  const slowAfterMs = 8000;

  function b64ToBytes(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function subscribe(opts) {
    const t = textsFor(opts.lang || document.documentElement.lang || navigator.language);
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      throw new Error(t.noSupport);
    }
    const reg = await navigator.serviceWorker.register(opts.serviceWorker || "/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      throw new Error(t.blocked);
    }
    const sub = await reg.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: b64ToBytes(opts.vapidKey),
    });
    const storeKey = "herald_subscriber_token";
    const body = {
      app: opts.app,
      list: opts.list,
      consent_version: opts.consentVersion,
      locale: navigator.language || "",
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "",
      device: { platform: "webpush", subscription: sub.toJSON() },
    };
    const token = localStorage.getItem(storeKey);
    if (token) body.subscriber_token = token;
    let res = await post(opts.api + "/public/v1/subscribe", body);
    if (res.status === 401 && token) {
      // The stored token expired: ask again as the browser holding the subscription.
      localStorage.removeItem(storeKey);
      delete body.subscriber_token;
      res = await post(opts.api + "/public/v1/subscribe", body);
    }
    const out = await res.json();
    if (!res.ok) throw new Error(out.reason ? out.field + " " + out.reason : out.detail || out.title);
    if (out.subscriber_token) localStorage.setItem(storeKey, out.subscriber_token);
    // The chat widget (widget.js) on this page starts with the new token.
    window.dispatchEvent(new CustomEvent("herald:subscribed", { detail: { status: out.status } }));
    return out;
  }

  function post(url, body) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  window.HeraldOptIn = { subscribe: subscribe };

  const box = document.getElementById("herald-optin");
  if (!box) return;
  const button = box.querySelector("#subscribe");
  const status = box.querySelector("#status");
  const lang = box.dataset.lang || document.documentElement.lang || navigator.language;
  const t = textsFor(lang);
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = t.asking;
    // Still waiting after a while: say so, and let the person try again.
    const slow = setTimeout(() => {
      status.textContent = t.slow;
      box.dataset.result = "slow";
      button.disabled = false;
    }, slowAfterMs);
    try {
      const out = await subscribe({
        app: box.dataset.app,
        list: box.dataset.list,
        consentVersion: parseInt(box.dataset.consentVersion || "0", 10),
        vapidKey: box.dataset.vapidKey,
        api: box.dataset.api || "",
        lang: lang,
      });
      status.textContent = out.status === "confirmed" ? t.subscribed : t.almost;
      box.dataset.result = out.status;
      button.disabled = true;
    } catch (e) {
      status.textContent = t.failed + " " + e.message;
      box.dataset.result = "error";
      button.disabled = false;
    } finally {
      clearTimeout(slow);
    }
  });
})();
