from nlbsuite.cli import main

raise SystemExit(main())
