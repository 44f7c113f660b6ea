/** First half of the corpus test: see test/corpus-suite.ts. */
import { corpusSuite } from './corpus-suite.js';

corpusSuite(0, 2);
