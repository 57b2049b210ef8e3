//! `burrow-cli`: a REPL and one-shot client with redis-cli syntax.
