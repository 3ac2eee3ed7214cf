// Part 1 of the multi-tab scenarios in one engine (TESSERA_E2E_ENGINE; tests/e2e/engines/suite.mjs
// says which scenarios each part runs and why they are split).
import { engineSuite } from "./engines/suite.mjs";

engineSuite(1);
