// Herald opt-in script. On the hosted page it drives the button; on your own
// site include
//   <div id="herald-optin" data-app="default" data-list="news" data-api="https://herald.example.com"
//        data-vapid-key="..."><button id="subscribe">Get notifications</button><p id="status"></p></div>
//   <script src="https://herald.example.com/embed.js"></script>
// and serve a copy of /sw.js from the root of your site.
(function () {
  "use strict";

  function b64ToBytes(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function subscribe(opts) {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      throw new Error("This browser cannot receive web notifications.");
    }
    const reg = await navigator.serviceWorker.register(opts.serviceWorker || "/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      throw new Error("Notifications are blocked. Allow them in your browser's site settings to subscribe.");
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
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Asking your browser…";
    try {
      const out = await subscribe({
        app: box.dataset.app,
        list: box.dataset.list,
        consentVersion: parseInt(box.dataset.consentVersion || "0", 10),
        vapidKey: box.dataset.vapidKey,
        api: box.dataset.api || "",
      });
      status.textContent =
        out.status === "confirmed"
          ? "You are subscribed."
          : "Almost done: confirm with the notification we just sent you.";
      box.dataset.result = out.status;
    } catch (e) {
      status.textContent = e.message;
      box.dataset.result = "error";
      button.disabled = false;
    }
  });
})();
