package web

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Staff pages speak English and German. The language is, in this order:
// ?lang=, the herald_lang cookie that ?lang= sets, the signed-in person's
// own setting, the browser's Accept-Language; English otherwise.
const langCookie = "herald_lang"

var languages = []string{"en", "de"}

// messages are the staff pages' texts by language; every language has
// every key (TestEveryMessageIsTranslated).
var messages = map[string]map[string]string{
	"en": {
		"Lang":                "en",
		"OtherLang":           "de",
		"OtherLangName":       "Deutsch",
		"Herald":              "Herald",
		"SignIn":              "Sign in",
		"SignInTitle":         "Sign in to Herald",
		"Email":               "Email address",
		"Password":            "Password",
		"BadCredentials":      "The email address or password is wrong.",
		"LockedOut":           "Too many failed attempts. Try again in a few minutes.",
		"SignedOut":           "You are signed out.",
		"SignOut":             "Sign out",
		"SignOutEverywhere":   "Sign out everywhere",
		"SignOutEverywhereDo": "Ends every session of yours, on every device, including this one.",
		"CodeTitle":           "Enter your code",
		"CodeHelp":            "Enter the 6-digit code from your authenticator app, or one of your recovery codes.",
		"Code":                "Code",
		"Continue":            "Continue",
		"BadCode":             "That code is not right, or was used already.",
		"AccessTitle":         "Set your password",
		"AccessInvitation":    "You were invited to Herald as %s. Choose a password to finish.",
		"AccessReset":         "Choose a new password for %s.",
		"Name":                "Your name",
		"NewPassword":         "New password",
		"RepeatPassword":      "Repeat the new password",
		"PasswordRule":        "At least 12 characters. A passphrase of several words is easy to remember and hard to guess.",
		"PasswordsDiffer":     "The two passwords are not the same.",
		"SavePassword":        "Save password",
		"LinkInvalid":         "This link is not valid. Check that you opened the whole link.",
		"LinkExpired":         "This link has expired. Ask an admin for a new one.",
		"LinkUsed":            "This link was used already. Sign in with your password, or ask an admin for a new link.",
		"LinkTitle":           "Link not usable",
		"AccountTitle":        "Your account",
		"Role":                "Role",
		"SecondFactor":        "Two-step sign-in",
		"TOTPOn":              "On: you sign in with a code from your authenticator app.",
		"TOTPOff":             "Off.",
		"TOTPSetUp":           "Set up two-step sign-in",
		"TOTPDisable":         "Turn off two-step sign-in",
		"RecoveryLeft":        "Recovery codes left: %d",
		"RecoveryNew":         "Make new recovery codes",
		"ChangePassword":      "Change password",
		"CurrentPassword":     "Current password",
		"WrongPassword":       "The current password is wrong.",
		"PasswordChanged":     "Your password was changed. Your other sessions were signed out.",
		"TOTPTitle":           "Two-step sign-in",
		"TOTPRequired":        "Admins must use two-step sign-in here. Set it up to continue.",
		"TOTPScan":            "Scan this code with an authenticator app (or type the key below), then enter the 6-digit code it shows.",
		"TOTPKey":             "Key",
		"TOTPConfirm":         "Turn on",
		"TOTPEnabled":         "Two-step sign-in is on.",
		"TOTPDisabled":        "Two-step sign-in is off.",
		"RecoveryTitle":       "Your recovery codes",
		"RecoveryHelp":        "Keep these codes somewhere safe. Each works once, in place of a code from your app. They are shown only now.",
		"Done":                "Done",
		"Forbidden":           "This form has expired or was sent from another site. Go back, reload the page and try again.",
		"ForbiddenTitle":      "Not allowed",
		"TooLong":             "That is too long.",
		"Required":            "Please fill this in.",
		"SkipToContent":       "Skip to content",
		// The pages subscribers see.
		"SubNotFound":            "Not found",
		"SubNoSuchList":          "There is no such list",
		"SubNoSuchApp":           "There is no such app",
		"SubExpiredTitle":        "Link expired",
		"SubExpiredHeading":      "This link has expired",
		"SubExpiredText":         "Confirmation links are valid for a limited time. Subscribe again to get a new one.",
		"SubUsedTitle":           "Already used",
		"SubUsedHeading":         "This link was already used",
		"SubUsedText":            "Each confirmation link works once. If you confirmed already, you are all set.",
		"SubNothingTitle":        "Nothing to confirm",
		"SubNothingHeading":      "There is nothing to confirm",
		"SubNothingText":         "This request was withdrawn or has lapsed. Subscribe again if you still want these messages.",
		"SubInvalidTitle":        "Invalid link",
		"SubInvalidHeading":      "This link is not valid",
		"SubInvalidText":         "Please check that you opened the whole link from your message.",
		"SubPrefsTitle":          "Your subscriptions",
		"SubPrefsOldHeading":     "This link is too old to show your subscriptions",
		"SubPrefsOldText":        "You can still stop every message from us: press the button to leave every list. Each message we send also has its own unsubscribe link.",
		"SubLeaveEvery":          "Leave every list",
		"SubConfirmTitle":        "Confirm",
		"SubConfirmHeading":      "Confirm your subscription",
		"SubConfirmText":         "Press the button to start receiving messages from %s.",
		"SubConfirmButton":       "Yes, subscribe me",
		"SubConfirmedTitle":      "Confirmed",
		"SubConfirmedHeading":    "You are subscribed",
		"SubConfirmedText":       "You will now receive messages from %s. You can leave at any time.",
		"SubManage":              "Manage your subscriptions",
		"SubUnsubTitle":          "Unsubscribe",
		"SubUnsubHeading":        "Unsubscribe from %s",
		"SubUnsubText":           "Press the button and you will receive no more messages from %s.",
		"SubUnsubButton":         "Unsubscribe",
		"SubUnsubscribedTitle":   "Unsubscribed",
		"SubUnsubscribedHeading": "You are unsubscribed",
		"SubUnsubscribedText":    "You will receive no more messages from %s.",
		"SubOtherSubs":           "See your other subscriptions",
		"SubAllLists":            "all lists",
		"SubLeftEveryHeading":    "You left every list",
		"SubLeftEveryText":       "You will receive no more messages from us.",
		"SubNotOnAny":            "You are not on any list.",
		"SubUnsubAll":            "Unsubscribe from everything",
		"SubStatus_confirmed":    "Subscribed",
		"SubStatus_pending":      "Waiting for your confirmation",
		"SubStatus_unsubscribed": "Unsubscribed",
		"SubGetNotifications":    "Get notifications",
		"SubOptInHelp":           "We ask your browser for permission to show notifications.",
		"SubOptInDouble":         "You then confirm once through a notification.",
		"SubOptInLeave":          "Every message has a link to leave.",
		"SubFooter":              "Sent with Herald. We keep only what we need to deliver your messages.",
		"SubRejoin":              "Subscribe again",
		"SubRejoinConsent":       "By subscribing again you agree to this:",
		"SubConsentChanged":      "The text you agree to has changed. Please read it again before you subscribe.",
		"SubCannotRejoin":        "This list cannot be joined again from here.",
		"SubSentBy":              "Sent by %s.",
		"SubPrivacy":             "Privacy policy",
		"SubImprint":             "Imprint",
	},
	"de": {
		"Lang":                "de",
		"OtherLang":           "en",
		"OtherLangName":       "English",
		"Herald":              "Herald",
		"SignIn":              "Anmelden",
		"SignInTitle":         "Bei Herald anmelden",
		"Email":               "E-Mail-Adresse",
		"Password":            "Passwort",
		"BadCredentials":      "E-Mail-Adresse oder Passwort ist falsch.",
		"LockedOut":           "Zu viele Fehlversuche. Bitte versuchen Sie es in einigen Minuten erneut.",
		"SignedOut":           "Sie sind abgemeldet.",
		"SignOut":             "Abmelden",
		"SignOutEverywhere":   "Überall abmelden",
		"SignOutEverywhereDo": "Beendet alle Ihre Sitzungen auf allen Geräten, auch diese.",
		"CodeTitle":           "Code eingeben",
		"CodeHelp":            "Geben Sie den 6-stelligen Code aus Ihrer Authenticator-App oder einen Ihrer Wiederherstellungscodes ein.",
		"Code":                "Code",
		"Continue":            "Weiter",
		"BadCode":             "Dieser Code stimmt nicht oder wurde schon verwendet.",
		"AccessTitle":         "Passwort festlegen",
		"AccessInvitation":    "Sie wurden als %s zu Herald eingeladen. Wählen Sie ein Passwort, um fortzufahren.",
		"AccessReset":         "Wählen Sie ein neues Passwort für %s.",
		"Name":                "Ihr Name",
		"NewPassword":         "Neues Passwort",
		"RepeatPassword":      "Neues Passwort wiederholen",
		"PasswordRule":        "Mindestens 12 Zeichen. Eine Passphrase aus mehreren Wörtern ist leicht zu merken und schwer zu erraten.",
		"PasswordsDiffer":     "Die beiden Passwörter stimmen nicht überein.",
		"SavePassword":        "Passwort speichern",
		"LinkInvalid":         "Dieser Link ist ungültig. Bitte prüfen Sie, ob Sie den vollständigen Link geöffnet haben.",
		"LinkExpired":         "Dieser Link ist abgelaufen. Bitten Sie eine Administratorin oder einen Administrator um einen neuen.",
		"LinkUsed":            "Dieser Link wurde bereits verwendet. Melden Sie sich mit Ihrem Passwort an oder bitten Sie um einen neuen Link.",
		"LinkTitle":           "Link nicht verwendbar",
		"AccountTitle":        "Ihr Konto",
		"Role":                "Rolle",
		"SecondFactor":        "Zweistufige Anmeldung",
		"TOTPOn":              "An: Sie melden sich mit einem Code aus Ihrer Authenticator-App an.",
		"TOTPOff":             "Aus.",
		"TOTPSetUp":           "Zweistufige Anmeldung einrichten",
		"TOTPDisable":         "Zweistufige Anmeldung ausschalten",
		"RecoveryLeft":        "Verbleibende Wiederherstellungscodes: %d",
		"RecoveryNew":         "Neue Wiederherstellungscodes erzeugen",
		"ChangePassword":      "Passwort ändern",
		"CurrentPassword":     "Aktuelles Passwort",
		"WrongPassword":       "Das aktuelle Passwort ist falsch.",
		"PasswordChanged":     "Ihr Passwort wurde geändert. Ihre anderen Sitzungen wurden beendet.",
		"TOTPTitle":           "Zweistufige Anmeldung",
		"TOTPRequired":        "Administratoren müssen hier die zweistufige Anmeldung verwenden. Richten Sie sie ein, um fortzufahren.",
		"TOTPScan":            "Scannen Sie diesen Code mit einer Authenticator-App (oder geben Sie den Schlüssel unten ein) und geben Sie dann den angezeigten 6-stelligen Code ein.",
		"TOTPKey":             "Schlüssel",
		"TOTPConfirm":         "Einschalten",
		"TOTPEnabled":         "Die zweistufige Anmeldung ist eingeschaltet.",
		"TOTPDisabled":        "Die zweistufige Anmeldung ist ausgeschaltet.",
		"RecoveryTitle":       "Ihre Wiederherstellungscodes",
		"RecoveryHelp":        "Bewahren Sie diese Codes sicher auf. Jeder funktioniert einmal anstelle eines Codes aus Ihrer App. Sie werden nur jetzt angezeigt.",
		"Done":                "Fertig",
		"Forbidden":           "Dieses Formular ist abgelaufen oder kam von einer anderen Website. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es erneut.",
		"ForbiddenTitle":      "Nicht erlaubt",
		"TooLong":             "Das ist zu lang.",
		"Required":            "Bitte füllen Sie dieses Feld aus.",
		"SkipToContent":       "Zum Inhalt springen",
		// The pages subscribers see.
		"SubNotFound":            "Nicht gefunden",
		"SubNoSuchList":          "Diese Liste gibt es nicht",
		"SubNoSuchApp":           "Diese App gibt es nicht",
		"SubExpiredTitle":        "Link abgelaufen",
		"SubExpiredHeading":      "Dieser Link ist abgelaufen",
		"SubExpiredText":         "Bestätigungslinks gelten nur für begrenzte Zeit. Melden Sie sich erneut an, um einen neuen zu erhalten.",
		"SubUsedTitle":           "Bereits verwendet",
		"SubUsedHeading":         "Dieser Link wurde bereits verwendet",
		"SubUsedText":            "Jeder Bestätigungslink funktioniert einmal. Wenn Sie schon bestätigt haben, ist alles erledigt.",
		"SubNothingTitle":        "Nichts zu bestätigen",
		"SubNothingHeading":      "Es gibt nichts zu bestätigen",
		"SubNothingText":         "Diese Anmeldung wurde zurückgezogen oder ist verfallen. Melden Sie sich erneut an, wenn Sie diese Nachrichten weiterhin erhalten möchten.",
		"SubInvalidTitle":        "Ungültiger Link",
		"SubInvalidHeading":      "Dieser Link ist ungültig",
		"SubInvalidText":         "Bitte prüfen Sie, ob Sie den vollständigen Link aus Ihrer Nachricht geöffnet haben.",
		"SubPrefsTitle":          "Ihre Abonnements",
		"SubPrefsOldHeading":     "Dieser Link ist zu alt, um Ihre Abonnements zu zeigen",
		"SubPrefsOldText":        "Sie können trotzdem jede Nachricht von uns abbestellen: Drücken Sie den Knopf, um alle Listen zu verlassen. Jede unserer Nachrichten enthält außerdem einen eigenen Abmeldelink.",
		"SubLeaveEvery":          "Alle Listen verlassen",
		"SubConfirmTitle":        "Bestätigen",
		"SubConfirmHeading":      "Bestätigen Sie Ihr Abonnement",
		"SubConfirmText":         "Drücken Sie den Knopf, um ab jetzt Nachrichten von „%s“ zu erhalten.",
		"SubConfirmButton":       "Ja, ich möchte sie erhalten",
		"SubConfirmedTitle":      "Bestätigt",
		"SubConfirmedHeading":    "Sie sind angemeldet",
		"SubConfirmedText":       "Sie erhalten jetzt Nachrichten von „%s“. Sie können sich jederzeit abmelden.",
		"SubManage":              "Abonnements verwalten",
		"SubUnsubTitle":          "Abmelden",
		"SubUnsubHeading":        "Von „%s“ abmelden",
		"SubUnsubText":           "Drücken Sie den Knopf, und Sie erhalten keine Nachrichten mehr von „%s“.",
		"SubUnsubButton":         "Abmelden",
		"SubUnsubscribedTitle":   "Abgemeldet",
		"SubUnsubscribedHeading": "Sie sind abgemeldet",
		"SubUnsubscribedText":    "Sie erhalten keine Nachrichten mehr von „%s“.",
		"SubOtherSubs":           "Ihre anderen Abonnements ansehen",
		"SubAllLists":            "allen Listen",
		"SubLeftEveryHeading":    "Sie haben alle Listen verlassen",
		"SubLeftEveryText":       "Sie erhalten keine Nachrichten mehr von uns.",
		"SubNotOnAny":            "Sie sind auf keiner Liste.",
		"SubUnsubAll":            "Von allem abmelden",
		"SubStatus_confirmed":    "Angemeldet",
		"SubStatus_pending":      "Wartet auf Ihre Bestätigung",
		"SubStatus_unsubscribed": "Abgemeldet",
		"SubGetNotifications":    "Benachrichtigungen erhalten",
		"SubOptInHelp":           "Wir bitten Ihren Browser um die Erlaubnis, Benachrichtigungen anzuzeigen.",
		"SubOptInDouble":         "Danach bestätigen Sie einmal über eine Benachrichtigung.",
		"SubOptInLeave":          "Jede Nachricht enthält einen Link zum Abmelden.",
		"SubFooter":              "Versandt mit Herald. Wir speichern nur, was wir für die Zustellung Ihrer Nachrichten brauchen.",
		"SubRejoin":              "Erneut anmelden",
		"SubRejoinConsent":       "Mit der erneuten Anmeldung stimmen Sie Folgendem zu:",
		"SubConsentChanged":      "Der Text, dem Sie zustimmen, hat sich geändert. Bitte lesen Sie ihn erneut, bevor Sie sich anmelden.",
		"SubCannotRejoin":        "Diese Liste kann von hier aus nicht erneut abonniert werden.",
		"SubSentBy":              "Absender: %s.",
		"SubPrivacy":             "Datenschutzerklärung",
		"SubImprint":             "Impressum",
	},
}

// roleNames are the roles as the pages show them.
var roleNames = map[string]map[string]string{
	"en": {"admin": "Admin", "marketer": "Marketing", "agent": "Support agent"},
	"de": {"admin": "Administration", "marketer": "Marketing", "agent": "Support"},
}

// langOf is the language of a staff page's answer (see langCookie).
func (s *Server) langOf(c *fiber.Ctx) string {
	if l := c.Query("lang"); isLanguage(l) {
		c.Cookie(&fiber.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
			SameSite: fiber.CookieSameSiteLaxMode, Secure: s.secureCookies()})
		return l
	}
	if l := c.Cookies(langCookie); isLanguage(l) {
		return l
	}
	if u := sessionOf(c); u != nil && isLanguage(u.user.Locale) {
		return u.user.Locale
	}
	return acceptLanguage(c.Get(fiber.HeaderAcceptLanguage))
}

func isLanguage(l string) bool {
	for _, x := range languages {
		if l == x {
			return true
		}
	}
	return false
}

// acceptLanguage picks the first of the browser's languages Herald speaks
// (by order; quality values are almost always in that order).
func acceptLanguage(h string) string {
	for _, part := range strings.Split(h, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		primary, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if isLanguage(primary) {
			return primary
		}
	}
	return "en"
}
