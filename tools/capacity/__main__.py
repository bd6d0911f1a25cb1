from tools.capacity.cli import main

raise SystemExit(main())
