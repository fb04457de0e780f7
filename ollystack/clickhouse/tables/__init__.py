"""DDL factories, one function per table. Migrations call them; nothing else writes DDL."""
