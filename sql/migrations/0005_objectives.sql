-- Shared objectives (contract section 7, issue 21): a target for one metric of
-- a site over the last 28 days, optionally narrowed by a scope, that marketing
-- and IT both steer by. `binome objective add|list|remove|check`
-- (collector/objectives.py) keeps them; rum.objectives computes them
-- (sql/views/57_objectives.sql).
--
-- name is unique across sites, not only within one: `binome objective remove
-- NAME` takes a name alone. The key starts with site as every key here does
-- (ready to distribute by site); `objective add` refuses a name another site
-- uses, under a table lock (collector/objectives.py).
--
-- notified_status is the status last delivered to BINOME_ALERT_WEBHOOK_URL
-- (NULL until the first delivery): `binome objective check` posts
-- once per change of it, and writes it only after the POST succeeded, under
-- the row's lock, so that a failed alert is retried at the next check and two
-- checks at once never both post one change.
--
-- value .. checked_at are the figures of the last check (rum.objectives'
-- value, value_low, value_high, n and status, and rum.objective_weeks' 8 weeks
-- as [{"week_start", "value", "n"}, ...] oldest first), written by each check
-- under the same row lock as notified_status (collector/objectives.py). They
-- let the scorecard's Objectives band read a row per objective
-- (rum.objective_results) instead of computing rum.objectives, which reads
-- every page view of the 28 days and 8 weeks. checked_at is NULL until the
-- first check; it is the time the check started (its figures' now()).
CREATE TABLE binome.objectives (
    site            text NOT NULL REFERENCES binome.sites (site) ON DELETE CASCADE,
    name            text COLLATE "C" NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.=-]{0,127}$'),
    metric          text NOT NULL CHECK (metric IN
                        ('lcp_p75', 'inp_p75', 'cls_p75', 'cwv_good_pct', 'conversion_rate')),
    target          double precision NOT NULL CHECK (target >= 0 AND target < 'Infinity'),
    -- {"channel": ..., "utm_campaign": ..., "device_class": ..., "country": ...,
    -- "page_type": ..., "landing": true}: every key optional, all must hold.
    scope           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(scope) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    notified_status text,
    notified_at     timestamptz,
    value           double precision,
    value_low       double precision,
    value_high      double precision,
    n               bigint,
    status          text CHECK (status IN ('met', 'at risk', 'missed', 'too few')),
    weeks           jsonb CHECK (jsonb_typeof(weeks) = 'array'),
    checked_at      timestamptz,
    PRIMARY KEY (site, name)
);

-- `binome serve`'s maintenance runs the check as binome_writer or
-- binome_maintainer (a member of binome_writer): it reads the objectives and
-- records what it computed and delivered, nothing else.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT SELECT ON binome.objectives TO binome_writer;
        GRANT UPDATE (notified_status, notified_at, value, value_low, value_high, n, status,
                      weeks, checked_at) ON binome.objectives TO binome_writer;
    END IF;
END
$$;
