-- What the snippet could not send (issue 22): each beacon may carry the counts,
-- by reason, of the beacons its page failed to send since its previous one
-- (docs/beacon-format.md, "lost"). Kept as sent, at both consent levels (a
-- count of failed sends says nothing of the visitor); rum.client_losses sums
-- them per day. A new nullable column at the end: old rows read NULL, and the
-- staging table (LIKE binome.beacon_columns) follows.
ALTER TABLE binome.beacons ADD COLUMN IF NOT EXISTS client_losses jsonb;
