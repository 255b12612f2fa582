// Offline, strict validation of Kubernetes manifests (pgstep's Job, CronJob, ConfigMap and the
// Argo CD / Flux objects) against the types the kubernetes-models packages ship.
//
//   node validate-manifests.mjs FILE...              validate every document of every FILE
//   node validate-manifests.mjs --same-pod-template FILE...
//                                                    also require that every Job's
//                                                    spec.template and every CronJob's
//                                                    spec.jobTemplate.spec.template are equal,
//                                                    and that every CronJob's jobTemplate.spec
//                                                    equals the spec of the Job in its file
//                                                    but for ttlSecondsAfterFinished
//
// Two checks per object, because each misses what the other catches:
//  1. the model's own validate() (JSON schema compiled with ajv): types, enums, formats,
//     required fields. It lets unknown fields through.
//  2. a walk of the object against the package's TypeScript declaration of the kind, using the
//     TypeScript checker: every key must be a declared property (or the type must have an
//     index signature, as labels do), and every scalar must fit the declared type. This is
//     what rejects a misspelt field such as restartPolicyy.
// YAML is read as YAML 1.1, as the API server and kubectl read it (0440 is octal there).
// Exit status: 0 valid, 1 invalid, 2 usage or setup error.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";

const modulesRoot = process.env.PGSTEP_NPM_DIR;
if (!modulesRoot) {
    console.error("validate-manifests: PGSTEP_NPM_DIR (the directory holding node_modules) is not set");
    process.exit(2);
}
const require = createRequire(path.join(modulesRoot, "package.json"));
const YAML = require("yaml");
const ts = require("typescript");

const args = process.argv.slice(2);
const samePodTemplate = args[0] === "--same-pod-template";
const files = samePodTemplate ? args.slice(1) : args;
if (files.length === 0) {
    console.error("usage: validate-manifests.mjs [--same-pod-template] FILE...");
    process.exit(2);
}

const errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);

// --- read every document --------------------------------------------------------------------
const objects = []; // { where, obj }
for (const file of files) {
    let text;
    try {
        text = readFileSync(file, "utf8");
    } catch (e) {
        console.error(`validate-manifests: cannot read ${file}: ${e.message}`);
        process.exit(2);
    }
    const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true, prettyErrors: true });
    docs.forEach((doc, i) => {
        const where = `${file}#${i + 1}`;
        for (const e of doc.errors) fail(where, `YAML: ${e.message.split("\n")[0]}`);
        if (doc.errors.length) return;
        const obj = doc.toJS({ maxAliasCount: 0 });
        if (obj === null || obj === undefined) return; // empty document
        if (typeof obj !== "object" || Array.isArray(obj)) {
            fail(where, "a manifest must be a mapping");
            return;
        }
        if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
            fail(where, "apiVersion and kind must be strings");
            return;
        }
        const name = obj.metadata?.name ?? "(no name)";
        objects.push({ where: `${where} ${obj.kind}/${name}`, file, obj });
    });
}

// --- find the model of each kind -------------------------------------------------------------
function moduleCandidates(apiVersion, kind) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    if (group === "") return [`kubernetes-models/${version}/${kind}`];
    if (group === "argoproj.io") return [`@kubernetes-models/argo-cd/${group}/${version}/${kind}`];
    if (group.endsWith(".fluxcd.io")) return [`@kubernetes-models/flux-cd/${group}/${version}/${kind}`];
    return [`kubernetes-models/${group}/${version}/${kind}`];
}

const models = new Map(); // "apiVersion kind" -> { spec, Model }
for (const { where, obj } of objects) {
    const key = `${obj.apiVersion} ${obj.kind}`;
    if (models.has(key)) continue;
    let found = null;
    for (const spec of moduleCandidates(obj.apiVersion, obj.kind)) {
        try {
            // The model packages are ESM-only with "./*": "./*.js" exports, which
            // require.resolve cannot follow; resolve the file the same way.
            const file = path.join(modulesRoot, "node_modules", `${spec}.js`);
            const mod = await import(pathToFileURL(file).href);
            if (typeof mod[obj.kind] === "function") {
                found = { spec, Model: mod[obj.kind] };
                break;
            }
        } catch {
            // not this package
        }
    }
    if (!found) fail(where, `no model for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
    models.set(key, found);
}

// --- 1. the models' JSON-schema validation ---------------------------------------------------
for (const { where, obj } of objects) {
    const m = models.get(`${obj.apiVersion} ${obj.kind}`);
    if (!m) continue;
    try {
        new m.Model(obj).validate();
    } catch (e) {
        for (const line of String(e.message ?? e).split("\n")) if (line.trim()) fail(where, `schema: ${line.trim()}`);
    }
}

// --- 2. strict walk against the TypeScript declarations ---------------------------------------
const usable = [...models.values()].filter(Boolean);
if (usable.length) {
    const virtualFile = path.join(modulesRoot, "__pgstep_validate_manifests__.ts");
    const specs = usable.map((m) => m.spec);
    const source = specs
        .map((spec, i) => `import type { I${spec.split("/").pop()} as T${i} } from "${spec}";\nexport type X${i} = T${i};`)
        .join("\n");
    const options = {
        noEmit: true,
        strict: true,
        skipLibCheck: true,
        types: [],
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
    };
    const host = ts.createCompilerHost(options);
    const baseGetSourceFile = host.getSourceFile.bind(host);
    const baseFileExists = host.fileExists.bind(host);
    const baseReadFile = host.readFile.bind(host);
    host.fileExists = (f) => f === virtualFile || baseFileExists(f);
    host.readFile = (f) => (f === virtualFile ? source : baseReadFile(f));
    host.getSourceFile = (f, lang, ...rest) =>
        f === virtualFile ? ts.createSourceFile(f, source, lang, true) : baseGetSourceFile(f, lang, ...rest);
    const program = ts.createProgram([virtualFile], options, host);
    const checker = program.getTypeChecker();
    const sf = program.getSourceFile(virtualFile);
    const diags = ts.getPreEmitDiagnostics(program, sf);
    if (diags.length) {
        for (const d of diags) console.error(`validate-manifests: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
        process.exit(2);
    }
    const typeOfSpec = new Map();
    for (const stmt of sf.statements) {
        if (ts.isTypeAliasDeclaration(stmt)) {
            const i = Number(stmt.name.text.slice(1));
            typeOfSpec.set(specs[i], checker.getTypeAtLocation(stmt.name));
        }
    }

    const F = ts.TypeFlags;
    const show = (t) => checker.typeToString(t);
    const membersOf = (t) => (t.isUnion() ? t.types : [t]);
    const isArray = (t) =>
        typeof checker.isArrayType === "function" ? checker.isArrayType(t) : t.getSymbol()?.getName() === "Array";
    const levenshtein = (a, b) => {
        const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
        for (let j = 1; j <= b.length; j++) d[0][j] = j;
        for (let i = 1; i <= a.length; i++)
            for (let j = 1; j <= b.length; j++)
                d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        return d[a.length][b.length];
    };

    function objectFit(value, t) {
        const props = new Map(checker.getPropertiesOfType(t).map((p) => [p.getName(), p]));
        const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
        const unknown = Object.keys(value).filter((k) => !props.has(k) && !index);
        return { props, index, unknown };
    }

    function walk(value, type, at, where) {
        const members = membersOf(type);
        if (members.some((t) => t.flags & (F.Any | F.Unknown))) return;
        if (value === null) return; // an explicit null means "unset", as the API server reads it
        if (Array.isArray(value)) {
            const arr = members.find(isArray);
            if (!arr) return fail(where, `${at}: expected ${show(type)}, found a list`);
            const elem = checker.getIndexTypeOfType(arr, ts.IndexKind.Number);
            value.forEach((v, i) => walk(v, elem, `${at}[${i}]`, where));
            return;
        }
        if (typeof value === "object") {
            const candidates = members.filter((t) => t.flags & F.Object && !isArray(t));
            if (!candidates.length) return fail(where, `${at}: expected ${show(type)}, found a mapping`);
            // In a union of object types, judge by the member the value fits best.
            const fits = candidates.map((t) => ({ t, ...objectFit(value, t) }));
            fits.sort((a, b) => a.unknown.length - b.unknown.length);
            const { props, index, unknown } = fits[0];
            for (const k of unknown) {
                const near = [...props.keys()].filter((p) => levenshtein(p.toLowerCase(), k.toLowerCase()) <= 2);
                fail(where, `${at ? at + "." : ""}${k}: unknown field${near.length ? ` (did you mean ${near.join(" or ")}?)` : ""}`);
            }
            for (const [k, v] of Object.entries(value)) {
                const sub = at ? `${at}.${k}` : k;
                if (props.has(k)) walk(v, checker.getTypeOfSymbol(props.get(k)), sub, where);
                else if (index) walk(v, index.type, sub, where);
            }
            return;
        }
        const ok = members.some((t) => {
            switch (typeof value) {
                case "string":
                    if (t.flags & F.StringLiteral) return t.value === value;
                    return (t.flags & (F.String | F.TemplateLiteral | F.StringMapping)) !== 0;
                case "number":
                    if (t.flags & F.NumberLiteral) return t.value === value;
                    return (t.flags & F.Number) !== 0;
                case "boolean":
                    if (t.flags & F.BooleanLiteral) return checker.typeToString(t) === String(value);
                    return (t.flags & F.Boolean) !== 0;
                default:
                    return false;
            }
        });
        if (!ok) fail(where, `${at}: expected ${show(type)}, found ${typeof value} ${JSON.stringify(value)}`);
    }

    for (const { where, obj } of objects) {
        const m = models.get(`${obj.apiVersion} ${obj.kind}`);
        if (m) walk(obj, typeOfSpec.get(m.spec), "", where);
    }
}

// --- optional: one pod template for every Job and CronJob --------------------------------------
if (samePodTemplate) {
    const templates = [];
    for (const { where, obj } of objects) {
        if (obj.kind === "Job") templates.push({ where, t: obj.spec?.template });
        if (obj.kind === "CronJob") templates.push({ where, t: obj.spec?.jobTemplate?.spec?.template });
    }
    if (templates.length < 2) fail("pod templates", `expected at least two Jobs/CronJobs, found ${templates.length}`);
    for (const other of templates.slice(1)) {
        if (!isDeepStrictEqual(templates[0].t, other.t))
            fail(other.where, `pod template differs from the one of ${templates[0].where}`);
    }
    // The CronJob carries a copy of the Job's whole spec (retries, deadline, podFailurePolicy),
    // so that a manual run behaves like the automatic one; only the TTL may differ, because the
    // Flux overlay removes it from the Job alone.
    const withoutTtl = (spec) => {
        const { ttlSecondsAfterFinished, ...rest } = spec ?? {};
        return rest;
    };
    for (const { where, file, obj } of objects) {
        if (obj.kind !== "CronJob") continue;
        const jobs = objects.filter((o) => o.file === file && o.obj.kind === "Job");
        if (jobs.length !== 1) {
            fail(where, `expected one Job beside the CronJob in ${file}, found ${jobs.length}`);
            continue;
        }
        if (!isDeepStrictEqual(withoutTtl(obj.spec?.jobTemplate?.spec), withoutTtl(jobs[0].obj.spec)))
            fail(where, `jobTemplate.spec differs from the spec of ${jobs[0].where}`);
    }
}

if (errors.length) {
    for (const e of errors) console.error(e);
    console.error(`validate-manifests: ${errors.length} problem(s) in ${files.length} file(s)`);
    process.exit(1);
}
console.log(`validate-manifests: ${objects.length} object(s) in ${files.length} file(s) valid`);
