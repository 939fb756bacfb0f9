-- docker-compose.yml's `roles` step, run by psql as the schema's owner after
-- `binome migrate` created the roles without passwords: each gets LOGIN and the
-- password of its variable in the environment (docs/deploy.md, "Roles"). \getenv keeps
-- the secrets out of the command line.
\getenv writer_password BINOME_WRITER_PASSWORD
\getenv maintainer_password BINOME_MAINTAINER_PASSWORD
\getenv analyst_password BINOME_ANALYST_PASSWORD
ALTER ROLE binome_writer LOGIN PASSWORD :'writer_password';
ALTER ROLE binome_maintainer LOGIN PASSWORD :'maintainer_password';
ALTER ROLE binome_analyst LOGIN PASSWORD :'analyst_password';
-- Per login: the grouped views sort a day in memory (docs/deploy.md, "Roles").
ALTER ROLE binome_analyst SET work_mem = '64MB';
