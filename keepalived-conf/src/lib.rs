//! keepalived.conf lexer and parser.
