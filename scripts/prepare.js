// npm's `prepare` hook: builds dist/ after `npm install` / `npm ci` in a clone. `npm pack` and `npm publish` run
// `prepack` (which builds) right before `prepare`, so building again there would only double the wait.
import { execSync } from "node:child_process";

const command = process.env.npm_command;
if (command !== "pack" && command !== "publish") execSync("npm run build", { stdio: "inherit" });
