// The console's texts, in English and German: the page's language (the
// server picks it as for the staff pages: ?lang=, cookie, the person's
// setting, Accept-Language).
const texts = {
  en: {
    skip: "Skip to content", navigation: "Console", campaigns: "Campaigns", loading: "Loading…",
    noCampaigns: "No campaigns yet.", name: "Name", status: "Status", created: "Created", devices: "devices",
    progress: "Progress", delivered: "Delivered", failed: "Failed", unknown: "Unknown", in_flight: "Sending",
    clicks: "Clicked", opens: "Opened", replies: "Replied", failedByReason: "Failed, by reason",
    signedOut: "Your session has ended: sign in again.",
    status_draft: "Draft", status_scheduled: "Scheduled", status_running: "Sending", status_paused: "Paused",
    status_finished: "Finished", status_cancelled: "Cancelled", status_failed: "Failed",
    action_pause: "Pause", action_resume: "Resume", action_cancel: "Cancel", "action_retry-failed": "Retry failed",
    lists: "Lists", subscribers: "Subscribers", slug: "Slug", optin: "Opt-in", visibility: "Visibility",
    optin_double: "Double", optin_single: "Single", visibility_public: "Public", visibility_private: "Private",
    searchLabel: "Email address or external id", search: "Search", noSubscribers: "No subscribers found.",
    externalId: "External id", email: "Email", state: "State", state_active: "Active", state_blocked: "Blocked",
    state_erased: "Erased", previous: "Previous", next: "Next", locale: "Language", timezone: "Time zone",
    memberships: "Lists", noMemberships: "On no list.", noDevices: "No devices.", active: "active", inactive: "inactive",
    membership_confirmed: "subscribed", membership_pending: "waiting for confirmation", membership_unsubscribed: "unsubscribed",
    newCampaign: "New campaign", app: "App", content: "Content", title: "Title", body: "Text", link: "Link",
    when: "When", whenLater: "Send when I press Send", whenAt: "At a time", saveDraft: "Save draft", preview: "Preview",
    desktop: "Desktop browser", audience: "Audience now", action_schedule: "Send",
    inbox: "Inbox", view_unassigned: "Unassigned", view_mine: "Mine", view_all: "All open", noConversations: "Nothing here.",
    nobody: "nobody", assignee: "Assigned to", note: "Note", subscriber: "Subscriber", read: "read", deliveredShort: "delivered",
    noteLabel: "Private note (the subscriber never sees it)", replyLabel: "Reply", asNote: "Note", canned: "Canned response",
    send: "Send", shortcuts: "Ctrl+Enter sends · r reply · p pick up · e resolve", pickUp: "Pick up", resolve: "Resolve",
    cstatus_open: "Open", cstatus_pending: "Pending", cstatus_snoozed: "Snoozed", cstatus_resolved: "Resolved",
    newMessage: "New message", desktopNotifications: "Desktop notifications", devicesLabel: "Devices",
    admin: "Admin", webhooks: "Webhooks", apiKeys: "API keys", auditLog: "Audit log", secretOnce: "The signing secret, shown only now:",
    keyOnce: "The key, shown only now:", events: "Events", allEvents: "all", enabled: "on", disabled: "off", addWebhook: "Add a webhook",
    description: "Description", noneMeansAll: "none: all of them", add: "Add", noDeliveries: "Nothing delivered yet.", event: "Event",
    attempts: "Attempts", redeliver: "Deliver again", role: "Role", prefix: "Starts with", expires: "Expires", revoked: "revoked",
    revoke: "Revoke", newKey: "New API key", validDays: "Valid for (days)", who: "Who", action: "Action", object: "Object", more: "More",
    consentHistory: "Consent history", source: "Source", consentVersion: "Consent text version",
    snoozeTomorrow: "Snooze until tomorrow 9:00", snoozedUntil: "Snoozed until", labels: "Labels", save: "Save",
    subscriberTyping: "The subscriber is typing…", alsoViewing: "Also looking at it:", available: "Available for new conversations",
  },
  de: {
    skip: "Zum Inhalt springen", navigation: "Konsole", campaigns: "Kampagnen", loading: "Wird geladen …",
    noCampaigns: "Noch keine Kampagnen.", name: "Name", status: "Status", created: "Angelegt", devices: "Geräte",
    progress: "Fortschritt", delivered: "Zugestellt", failed: "Fehlgeschlagen", unknown: "Unbekannt", in_flight: "Wird gesendet",
    clicks: "Angetippt", opens: "Geöffnet", replies: "Beantwortet", failedByReason: "Fehlgeschlagen, nach Grund",
    signedOut: "Ihre Sitzung ist abgelaufen: Bitte melden Sie sich erneut an.",
    status_draft: "Entwurf", status_scheduled: "Geplant", status_running: "Wird gesendet", status_paused: "Pausiert",
    status_finished: "Abgeschlossen", status_cancelled: "Abgebrochen", status_failed: "Fehlgeschlagen",
    action_pause: "Pausieren", action_resume: "Fortsetzen", action_cancel: "Abbrechen", "action_retry-failed": "Fehlgeschlagene erneut senden",
    lists: "Listen", subscribers: "Abonnenten", slug: "Kürzel", optin: "Anmeldung", visibility: "Sichtbarkeit",
    optin_double: "Doppelt", optin_single: "Einfach", visibility_public: "Öffentlich", visibility_private: "Privat",
    searchLabel: "E-Mail-Adresse oder externe ID", search: "Suchen", noSubscribers: "Keine Abonnenten gefunden.",
    externalId: "Externe ID", email: "E-Mail", state: "Zustand", state_active: "Aktiv", state_blocked: "Gesperrt",
    state_erased: "Gelöscht", previous: "Zurück", next: "Weiter", locale: "Sprache", timezone: "Zeitzone",
    memberships: "Listen", noMemberships: "Auf keiner Liste.", noDevices: "Keine Geräte.", active: "aktiv", inactive: "inaktiv",
    membership_confirmed: "angemeldet", membership_pending: "wartet auf Bestätigung", membership_unsubscribed: "abgemeldet",
    newCampaign: "Neue Kampagne", app: "App", content: "Inhalt", title: "Titel", body: "Text", link: "Link",
    when: "Wann", whenLater: "Senden, wenn ich auf Senden drücke", whenAt: "Zu einem Zeitpunkt", saveDraft: "Entwurf speichern", preview: "Vorschau",
    desktop: "Desktop-Browser", audience: "Zielgruppe jetzt", action_schedule: "Senden",
    inbox: "Posteingang", view_unassigned: "Nicht zugewiesen", view_mine: "Meine", view_all: "Alle offenen", noConversations: "Hier ist nichts.",
    nobody: "niemand", assignee: "Zugewiesen an", note: "Notiz", subscriber: "Abonnent", read: "gelesen", deliveredShort: "zugestellt",
    noteLabel: "Private Notiz (der Abonnent sieht sie nie)", replyLabel: "Antwort", asNote: "Notiz", canned: "Textbaustein",
    send: "Senden", shortcuts: "Strg+Enter sendet · r antworten · p übernehmen · e erledigen", pickUp: "Übernehmen", resolve: "Erledigt",
    cstatus_open: "Offen", cstatus_pending: "Wartend", cstatus_snoozed: "Zurückgestellt", cstatus_resolved: "Erledigt",
    newMessage: "Neue Nachricht", desktopNotifications: "Desktop-Benachrichtigungen", devicesLabel: "Geräte",
    admin: "Verwaltung", webhooks: "Webhooks", apiKeys: "API-Schlüssel", auditLog: "Protokoll", secretOnce: "Das Signaturgeheimnis, nur jetzt sichtbar:",
    keyOnce: "Der Schlüssel, nur jetzt sichtbar:", events: "Ereignisse", allEvents: "alle", enabled: "an", disabled: "aus", addWebhook: "Webhook hinzufügen",
    description: "Beschreibung", noneMeansAll: "keins: alle", add: "Hinzufügen", noDeliveries: "Noch nichts zugestellt.", event: "Ereignis",
    attempts: "Versuche", redeliver: "Erneut zustellen", role: "Rolle", prefix: "Beginnt mit", expires: "Läuft ab", revoked: "widerrufen",
    revoke: "Widerrufen", newKey: "Neuer API-Schlüssel", validDays: "Gültig für (Tage)", who: "Wer", action: "Aktion", object: "Objekt", more: "Mehr",
    consentHistory: "Einwilligungen", source: "Quelle", consentVersion: "Version des Einwilligungstexts",
    snoozeTomorrow: "Zurückstellen bis morgen 9:00", snoozedUntil: "Zurückgestellt bis", labels: "Labels", save: "Speichern",
    subscriberTyping: "Der Abonnent schreibt …", alsoViewing: "Sieht sich das auch an:", available: "Verfügbar für neue Unterhaltungen",
  },
};

export const lang = document.getElementById("app").dataset.lang === "de" ? "de" : "en";

// t is the text for key in the page's language (the key itself if none:
// a missing text shows, and TestConsoleTexts fails).
export function t(key) {
  return texts[lang][key] ?? key;
}

export const keys = { en: Object.keys(texts.en), de: Object.keys(texts.de) };
