"""Probes: one module per probe kind, plus the scheduler that runs them.

Entry points: ``run.run_probe`` (one probe of any kind, never raises), ``scheduler.ProbeScheduler``
(every endpoint at its interval), ``policy.AddressPolicy`` (where probes may connect) and
``base.ProbeContext`` (policy, Secret reader and shared HTTP client of one agreement).
"""
