"""Pure drift statistics and alert rules: no I/O, numbers in and numbers out."""
