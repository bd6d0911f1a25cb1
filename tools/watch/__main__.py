from tools.watch.cli import main

raise SystemExit(main())
