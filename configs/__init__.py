"""Accelerator configurations shipped with bitmill (package data): ``accel/<name>.yaml``,
selectable by name with `bitmill.config.AccelConfig.resolve`."""
