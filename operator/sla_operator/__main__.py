from sla_operator.cli import main

raise SystemExit(main())
