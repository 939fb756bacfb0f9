-- Each site's currency (issue 24): revenue is shown with it, in `binome report`
-- and on the dashboard. Conversions carry an optional ISO 4217 `currency`
-- (contract section 5), but page views store only the sum of their values, so
-- the site says which currency its values are in: `binome site add NAME
-- --currency USD`; EUR until it says otherwise.
ALTER TABLE binome.sites
    ADD COLUMN currency text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$');
