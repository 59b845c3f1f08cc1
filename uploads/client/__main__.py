from uploads.client.cli import main

raise SystemExit(main())
