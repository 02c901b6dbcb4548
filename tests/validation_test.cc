// Copyright 2026 The convstore Authors.
//
// Input validation: UTF-8 well-formedness, JSON objects, conversation ids,
// message fields and history options, each limit on both sides.

#include "validation.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

namespace convstore::internal {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

bool Contains(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos;
}

TEST_CASE("IsValidUtf8 accepts well-formed text", "[validation]") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ASCII, with punctuation!"));
  CHECK(IsValidUtf8(std::string("a\0b", 3)));  // NUL is valid UTF-8
  CHECK(IsValidUtf8(Bytes({0x7f})));
  CHECK(IsValidUtf8(Bytes({0xc2, 0x80})));              // U+0080
  CHECK(IsValidUtf8(Bytes({0xc3, 0xa9})));              // U+00E9
  CHECK(IsValidUtf8(Bytes({0xdf, 0xbf})));              // U+07FF
  CHECK(IsValidUtf8(Bytes({0xe0, 0xa0, 0x80})));        // U+0800
  CHECK(IsValidUtf8(Bytes({0xe2, 0x82, 0xac})));        // U+20AC euro
  CHECK(IsValidUtf8(Bytes({0xed, 0x9f, 0xbf})));        // U+D7FF
  CHECK(IsValidUtf8(Bytes({0xee, 0x80, 0x80})));        // U+E000
  CHECK(IsValidUtf8(Bytes({0xef, 0xbf, 0xbf})));        // U+FFFF
  CHECK(IsValidUtf8(Bytes({0xf0, 0x90, 0x80, 0x80})));  // U+10000
  CHECK(IsValidUtf8(Bytes({0xf0, 0x9f, 0x98, 0x80})));  // U+1F600
  CHECK(IsValidUtf8(Bytes({0xf4, 0x8f, 0xbf, 0xbf})));  // U+10FFFF
  CHECK(IsValidUtf8("caf" + Bytes({0xc3, 0xa9}) + " " +
                    Bytes({0xe6, 0x97, 0xa5, 0xe6, 0x9c, 0xac})));
}

TEST_CASE("IsValidUtf8 rejects overlong encodings", "[validation]") {
  CHECK_FALSE(IsValidUtf8(Bytes({0xc0, 0x80})));  // overlong NUL
  CHECK_FALSE(IsValidUtf8(Bytes({0xc0, 0xaf})));  // overlong '/'
  CHECK_FALSE(IsValidUtf8(Bytes({0xc1, 0xbf})));  // overlong U+007F
  CHECK_FALSE(IsValidUtf8(Bytes({0xe0, 0x80, 0x80})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xe0, 0x9f, 0xbf})));  // overlong U+07FF
  CHECK_FALSE(IsValidUtf8(Bytes({0xf0, 0x80, 0x80, 0x80})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xf0, 0x8f, 0xbf, 0xbf})));  // U+FFFF
}

TEST_CASE("IsValidUtf8 rejects surrogates and code points past U+10FFFF",
          "[validation]") {
  CHECK_FALSE(IsValidUtf8(Bytes({0xed, 0xa0, 0x80})));  // U+D800
  CHECK_FALSE(IsValidUtf8(Bytes({0xed, 0xb0, 0x80})));  // U+DC00
  CHECK_FALSE(IsValidUtf8(Bytes({0xed, 0xbf, 0xbf})));  // U+DFFF
  // A surrogate pair encoded as two 3-byte sequences (CESU-8).
  CHECK_FALSE(IsValidUtf8(Bytes({0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xf4, 0x90, 0x80, 0x80})));  // U+110000
  CHECK_FALSE(IsValidUtf8(Bytes({0xf5, 0x80, 0x80, 0x80})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xf7, 0xbf, 0xbf, 0xbf})));        // U+1FFFFF
  CHECK_FALSE(IsValidUtf8(Bytes({0xf8, 0x88, 0x80, 0x80, 0x80})));  // 5-byte
  CHECK_FALSE(IsValidUtf8(Bytes({0xfc, 0x84, 0x80, 0x80, 0x80, 0x80})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xfe})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xff})));
}

TEST_CASE("IsValidUtf8 rejects truncated sequences and stray continuations",
          "[validation]") {
  CHECK_FALSE(IsValidUtf8(Bytes({0xc3})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xe2, 0x82})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xf0, 0x9f, 0x98})));
  CHECK_FALSE(IsValidUtf8("ok" + Bytes({0xf0, 0x9f})));  // cut at the end
  // A lead byte followed by a non-continuation byte.
  CHECK_FALSE(IsValidUtf8(Bytes({0xe2, 0x82, 'a'})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xc3, 'a'})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xf0, 0x9f, 0x98, 0xc3, 0xa9})));
  // Continuation bytes with no lead byte.
  CHECK_FALSE(IsValidUtf8(Bytes({0x80})));
  CHECK_FALSE(IsValidUtf8(Bytes({0xbf})));
  CHECK_FALSE(IsValidUtf8("a" + Bytes({0xbf}) + "b"));
  CHECK_FALSE(IsValidUtf8(Bytes({0xc3, 0xa9, 0xa9})));  // one too many
}

TEST_CASE("IsJsonObject accepts only JSON objects", "[validation]") {
  CHECK(IsJsonObject("{}"));
  CHECK(IsJsonObject(" { } "));
  CHECK(IsJsonObject(R"({"a":1,"b":[1,2,{"c":null}],"d":"x"})"));
  CHECK_FALSE(IsJsonObject(""));
  CHECK_FALSE(IsJsonObject("[]"));
  CHECK_FALSE(IsJsonObject(R"([{"a":1}])"));
  CHECK_FALSE(IsJsonObject("42"));
  CHECK_FALSE(IsJsonObject("-1.5e3"));
  CHECK_FALSE(IsJsonObject(R"("a string")"));
  CHECK_FALSE(IsJsonObject("null"));
  CHECK_FALSE(IsJsonObject("true"));
  CHECK_FALSE(IsJsonObject("{"));
  CHECK_FALSE(IsJsonObject(R"({"a":})"));
  CHECK_FALSE(IsJsonObject(R"({a:1})"));
  CHECK_FALSE(IsJsonObject("{} {}"));
  CHECK_FALSE(IsJsonObject("{}garbage"));
}

TEST_CASE("ValidateConversationId", "[validation]") {
  Options o;
  o.max_id_bytes = 8;

  CHECK(ValidateConversationId("a", o).ok());
  CHECK(ValidateConversationId("12345678", o).ok());
  CHECK(ValidateConversationId("with sp", o).ok());
  // The limit is in bytes: four 2-byte characters fit, five do not.
  std::string e = Bytes({0xc3, 0xa9});
  CHECK(ValidateConversationId(e + e + e + e, o).ok());
  Status s = ValidateConversationId(e + e + e + e + e, o);
  CHECK(s.IsInvalidArgument());
  CHECK(Contains(s, "conversation_id is 10 bytes"));
  CHECK(Contains(s, "max_id_bytes = 8"));

  s = ValidateConversationId("", o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "conversation_id is empty");

  s = ValidateConversationId("123456789", o);
  CHECK(s.IsInvalidArgument());
  CHECK(Contains(s, "conversation_id is 9 bytes"));

  for (const std::string& bad :
       {std::string("a\0b", 3), std::string("a\nb"), std::string("\t"),
        std::string("x\x1f"), std::string("del\x7f"), std::string("\r")}) {
    s = ValidateConversationId(bad, o);
    INFO("id of " << bad.size() << " bytes");
    CHECK(s.IsInvalidArgument());
    CHECK(s.message() == "conversation_id contains a NUL or control character");
  }

  for (const std::string& bad : {Bytes({0xc3}), Bytes({'a', 0xc0, 0x80}),
                                 Bytes({0xed, 0xa0, 0x80}), Bytes({0xff})}) {
    s = ValidateConversationId(bad, o);
    CHECK(s.IsInvalidArgument());
    CHECK(s.message() == "conversation_id is not valid UTF-8");
  }

  // Ids are data, never SQL: taken verbatim.
  Options wide;
  CHECK(ValidateConversationId("'; DROP TABLE messages; --", wide).ok());
  CHECK(ValidateConversationId(R"(" OR 1=1 --)", wide).ok());
  // Default limit: 256 bytes.
  CHECK(ValidateConversationId(std::string(256, 'x'), wide).ok());
  CHECK(
      ValidateConversationId(std::string(257, 'x'), wide).IsInvalidArgument());
}

Message Valid() {
  Message m;
  m.role = Role::kAssistant;
  m.content = "hello";
  m.user_id = "u1";
  m.tokens_in = 3;
  m.tokens_out = 4;
  m.tool_call_id = "call_1";
  m.tool_name = "search";
  m.metadata = R"({"k":"v"})";
  m.created_at_us = 1'700'000'000'000'000;
  return m;
}

TEST_CASE("ValidateMessage accepts a full valid message", "[validation]") {
  Options o;
  CHECK(ValidateMessage(Valid(), o).ok());
  Message minimal;
  CHECK(ValidateMessage(minimal, o).ok());  // empty content, ids, metadata
  for (Role r : {Role::kSystem, Role::kUser, Role::kAssistant, Role::kTool}) {
    Message m = Valid();
    m.role = r;
    CHECK(ValidateMessage(m, o).ok());
  }
}

TEST_CASE("ValidateMessage rejects a role outside the enum", "[validation]") {
  Options o;
  Message m = Valid();
  m.role = static_cast<Role>(7);
  Status s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(Contains(s, "role 7 is not one of"));
  m.role = static_cast<Role>(-1);
  CHECK(ValidateMessage(m, o).IsInvalidArgument());
  m.role = static_cast<Role>(4);
  CHECK(ValidateMessage(m, o).IsInvalidArgument());
}

TEST_CASE("ValidateMessage content limits", "[validation]") {
  Options o;
  o.max_content_bytes = 10;
  Message m = Valid();
  m.content = std::string(10, 'c');
  CHECK(ValidateMessage(m, o).ok());
  m.content = std::string(11, 'c');
  Status s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "content is 11 bytes; the limit is 10");
  m.content = "bad " + Bytes({0xc0, 0x80});
  s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "content is not valid UTF-8");
}

TEST_CASE("ValidateMessage metadata", "[validation]") {
  Options o;
  o.max_metadata_bytes = 16;
  Message m = Valid();
  m.metadata = "";
  CHECK(ValidateMessage(m, o).ok());
  m.metadata = R"({"a":"0123456"})";  // 15 bytes
  CHECK(ValidateMessage(m, o).ok());
  m.metadata = R"({"a":"01234567"})";  // 16 bytes
  CHECK(ValidateMessage(m, o).ok());
  m.metadata = R"({"a":"012345678"})";  // 17 bytes
  Status s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "metadata is 17 bytes; the limit is 16");

  for (const char* bad : {"[1,2]", "42", R"("s")", "null", "{", "{x}"}) {
    m.metadata = bad;
    s = ValidateMessage(m, o);
    INFO("metadata " << bad);
    CHECK(s.IsInvalidArgument());
    CHECK(s.message() == "metadata is not a JSON object");
  }
  m.metadata = Bytes({'{', '"', 0xff, '"', ':', '1', '}'});
  s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "metadata is not valid UTF-8");
}

TEST_CASE("ValidateMessage token counts", "[validation]") {
  Options o;
  o.max_tokens_per_message = 1000;
  Message m = Valid();
  m.tokens_in = 0;
  m.tokens_out = 1000;
  CHECK(ValidateMessage(m, o).ok());

  m.tokens_in = -1;
  Status s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() ==
        "tokens_in = -1 is outside [0, Options::max_tokens_per_message = "
        "1000]");

  m.tokens_in = 0;
  m.tokens_out = 1001;
  s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(Contains(s, "tokens_out = 1001 is outside"));

  m.tokens_out = std::numeric_limits<int64_t>::max();
  CHECK(ValidateMessage(m, o).IsInvalidArgument());
  m.tokens_out = std::numeric_limits<int64_t>::min();
  CHECK(ValidateMessage(m, o).IsInvalidArgument());
  m.tokens_out = 0;
  m.tokens_in = std::numeric_limits<int64_t>::max();
  CHECK(Contains(ValidateMessage(m, o), "tokens_in"));
}

TEST_CASE("ValidateMessage optional ids", "[validation]") {
  Options o;
  o.max_id_bytes = 4;
  Message m = Valid();
  m.user_id = "";
  m.tool_call_id = "";
  m.tool_name = "";
  CHECK(ValidateMessage(m, o).ok());  // all optional

  m.user_id = "u\n";
  Status s = ValidateMessage(m, o);
  CHECK(s.message() == "user_id contains a NUL or control character");
  m.user_id = "abcd";
  CHECK(ValidateMessage(m, o).ok());

  m.tool_call_id = "abcde";
  s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(Contains(s, "tool_call_id is 5 bytes"));
  m.tool_call_id = "";

  m.tool_name = Bytes({0xc3});
  s = ValidateMessage(m, o);
  CHECK(s.message() == "tool_name is not valid UTF-8");
}

TEST_CASE("ValidateMessage created_at", "[validation]") {
  Options o;
  Message m = Valid();
  m.created_at_us = 0;  // "now"
  CHECK(ValidateMessage(m, o).ok());
  m.created_at_us = -1;
  Status s = ValidateMessage(m, o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "created_at_us is negative");
  m.created_at_us = std::numeric_limits<int64_t>::min();
  CHECK(ValidateMessage(m, o).IsInvalidArgument());
}

TEST_CASE("ValidateHistoryOptions", "[validation]") {
  HistoryOptions o;
  CHECK(ValidateHistoryOptions(o).ok());

  o.limit = 10;
  o.after_seq = 5;
  o.token_budget = 100;
  CHECK(ValidateHistoryOptions(o).ok());

  o = HistoryOptions();
  o.last_n = 10;
  o.token_budget = 100;
  CHECK(ValidateHistoryOptions(o).ok());

  o = HistoryOptions();
  o.after_seq = -1;
  Status s = ValidateHistoryOptions(o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "after_seq is negative");

  o = HistoryOptions();
  o.limit = 1;
  o.last_n = 1;
  s = ValidateHistoryOptions(o);
  CHECK(s.IsInvalidArgument());
  CHECK(Contains(s, "cannot be combined"));

  o = HistoryOptions();
  o.token_budget = -1;
  s = ValidateHistoryOptions(o);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "token_budget is negative");
}

}  // namespace
}  // namespace convstore::internal
