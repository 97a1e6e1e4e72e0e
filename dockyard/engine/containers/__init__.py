"""The container service: lifecycle, attach, logs, state that outlives the engine."""
