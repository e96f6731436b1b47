-- Who sends. The pages subscribers see (opt-in, confirmation, unsubscribe,
-- preferences) name the company behind an app, link its privacy policy and
-- imprint (a German company must show both), and carry its logo and
-- colour. A list may have a colour of its own. The logo is kept here and
-- served by Herald: a page that loaded it from elsewhere would tell that
-- server about every visitor.
ALTER TABLE apps
    ADD COLUMN company_name text NOT NULL DEFAULT '' CHECK (length(company_name) <= 200),
    ADD COLUMN privacy_url  text NOT NULL DEFAULT '' CHECK (privacy_url = '' OR privacy_url ~* '^https?://'),
    ADD COLUMN imprint_url  text NOT NULL DEFAULT '' CHECK (imprint_url = '' OR imprint_url ~* '^https?://'),
    ADD COLUMN accent_color text NOT NULL DEFAULT '' CHECK (accent_color = '' OR accent_color ~ '^#[0-9a-f]{6}$'),
    ADD COLUMN logo         bytea CHECK (octet_length(logo) <= 262144),
    ADD COLUMN logo_type    text CHECK (logo_type IN ('image/png', 'image/jpeg', 'image/webp')),
    ADD CONSTRAINT apps_logo_typed CHECK ((logo IS NULL) = (logo_type IS NULL));

ALTER TABLE lists
    ADD COLUMN accent_color text NOT NULL DEFAULT '' CHECK (accent_color = '' OR accent_color ~ '^#[0-9a-f]{6}$');
