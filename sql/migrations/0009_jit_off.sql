-- 0009: no JIT compilation in this database.
--
-- Why: the views' plans are estimated over every daily partition (the planner
-- cannot know that a query reads a day or two of them), so their estimated
-- cost passes jit_above_cost, and PostgreSQL then compiles them to machine
-- code before running them: 2.5 s to compile a rollup statement that runs in
-- 0.3 s (bench/views.py's database of 10 million page views). Nothing Binome
-- runs is long enough for JIT to pay back. This sets the database's default,
-- for every role and login (a role's own settings would not reach the logins
-- that are members of it); the collector also turns JIT off on its own
-- connections (collector/db.py), so it does not depend on this.
-- Changing a database's defaults takes its owner: a migration role that is
-- not gets a warning, and the README's "Roles" says what to run instead.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot set jit = off on database %: %', current_database(), SQLERRM;
END
$$;

-- And on the maintenance functions whoever calls them: a rollup runs the live
-- views for one day, whose plans span every partition.
ALTER FUNCTION binome.write_rollup(text, date) SET jit = off;
ALTER FUNCTION binome.refresh_live_snapshots(bigint, interval) SET jit = off;
ALTER FUNCTION binome.close_days(date) SET jit = off;
