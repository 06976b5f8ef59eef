// The official openai Node SDK against llmsim serve: streaming, tools (the SDK's own tool
// runner and streamed parallel calls) and one fault. Prints one JSON object of what it saw;
// tests/agents/test_node_sdk.py starts the server, runs this with node and asserts on it.
import OpenAI, { AuthenticationError, RateLimitError } from "openai";

const baseURL = process.argv[2] + "/v1";
const client = new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0 });
const user = [{ role: "user", content: "What is the weather in Oslo?" }];
const weather = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const out = {};

// Streaming, with usage.
const stream = await client.chat.completions.create({
  model: "gpt-4o", messages: user, stream: true, stream_options: { include_usage: true },
});
const chunks = [];
for await (const chunk of stream) chunks.push(chunk);
out.stream = {
  chunks: chunks.length,
  ids: [...new Set(chunks.map((c) => c.id))].length,
  text: chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""),
  finish: chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean),
  usage: chunks.at(-1).usage,
  lastChoices: chunks.at(-1).choices.length,
};

// Tools: the SDK's own tool runner loops until the model answers in text.
const ran = [];
const runner = client.chat.completions.runTools({
  model: "gpt-4o", messages: user,
  tools: [{ type: "function", function: {
    name: "get_weather", parameters: weather, parse: JSON.parse,
    function: (args) => { ran.push(args); return "-3 C and windy"; },
  } }],
});
out.runTools = { final: await runner.finalContent(), ran, requests: runner.allChatCompletions().length };

// Streamed parallel calls through the stream helper.
const parallel = client.chat.completions.stream({
  model: "gpt-4o", messages: [{ role: "user", content: "both please" }],
  tools: [
    { type: "function", function: { name: "get_weather", parameters: weather } },
    { type: "function", function: { name: "to_fahrenheit", parameters: { type: "object", properties: { celsius: { type: "number" } } } } },
  ],
});
const completion = await parallel.finalChatCompletion();
out.parallel = {
  finish: completion.choices[0].finish_reason,
  calls: completion.choices[0].message.tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]),
};

// One fault: a forced rate limit, answered in OpenAI's shape.
try {
  await client.chat.completions.create({ model: "gpt-4o", messages: user }, { headers: { "x-llmsim-fault": "rate_limit" } });
  out.fault = { raised: false };
} catch (err) {
  out.fault = {
    raised: true, rateLimitError: err instanceof RateLimitError, status: err.status, code: err.code,
    type: err.type, requestID: err.requestID, retryAfter: err.headers?.get("retry-after"),
    retryAfterMs: err.headers?.get("retry-after-ms"),
  };
}
// The rate-limit headers every answer carries (the default tier's).
const { response: raw } = await client.chat.completions.create({ model: "gpt-4o", messages: user }).withResponse();
out.headers = {
  limit: raw.headers.get("x-ratelimit-limit-requests"), remaining: raw.headers.get("x-ratelimit-remaining-requests"),
  tokens: raw.headers.get("x-ratelimit-limit-tokens"),
};

// An authentication fault, and a refusal (plain and through the stream helper).
try {
  await client.chat.completions.create({ model: "gpt-4o", messages: user }, { headers: { "x-llmsim-fault": "authentication" } });
  out.auth = { raised: false };
} catch (err) {
  out.auth = { raised: true, authenticationError: err instanceof AuthenticationError, status: err.status, code: err.code };
}
const refused = await client.chat.completions.create({ model: "gpt-4o", messages: user }, { headers: { "x-llmsim-fault": "refusal" } });
const refusedStream = client.chat.completions.stream({ model: "gpt-4o", messages: user }, { headers: { "x-llmsim-fault": "refusal" } });
const refusedFinal = await refusedStream.finalChatCompletion();
out.refusal = {
  refusal: refused.choices[0].message.refusal, content: refused.choices[0].message.content,
  streamed: refusedFinal.choices[0].message.refusal,
};
console.log(JSON.stringify(out));
