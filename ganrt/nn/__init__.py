"""ganrt.nn."""
