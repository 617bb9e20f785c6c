#include "services/import_processor/column_mapping.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/values/typed_value.h"

namespace contacts {
namespace {

std::vector<AttributeInfo> Schema() {
  return {{"email", AttributeType::kEmail, false},
          {"mobile", AttributeType::kMobile, false},
          {"customer_id", AttributeType::kText, true},
          {"first_name", AttributeType::kText, false},
          {"city", AttributeType::kText, false}};
}

TEST(NormalizeColumnNameTest, LowerCasesAndDropsSeparators) {
  EXPECT_EQ(NormalizeColumnName("E-mail Address"), "emailaddress");
  EXPECT_EQ(NormalizeColumnName("First_Name"), "firstname");
  EXPECT_EQ(NormalizeColumnName("  CITY "), "city");
  EXPECT_EQ(NormalizeColumnName("Ünit"), "unit");  // Latin letters lose their accents
}

TEST(SuggestAttributesTest, MatchesByNormalisedNameAndSynonyms) {
  std::vector<std::string> columns = {"E-mail", "Mobile Number", "Customer ID", "First Name", "Age", "City"};
  std::vector<std::string> got = SuggestAttributes(columns, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"email", "mobile", "customer_id", "first_name", "", "city"}));
}

TEST(SuggestAttributesTest, EmailAddressAndPhoneMapToSystemAttributes) {
  std::vector<std::string> got = SuggestAttributes({"Email Address", "Phone"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"email", "mobile"}));
}

TEST(SuggestAttributesTest, SuggestsEachAttributeOnce) {
  // "Email" matches exactly and wins over the earlier synonym column.
  std::vector<std::string> got = SuggestAttributes({"Mail", "Email", "E_MAIL"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"", "email", ""}));
}

TEST(SuggestAttributesTest, DropsTrailingNumberOrAddressWhenThatMatches) {
  std::vector<std::string> got = SuggestAttributes({"City Name", "City Address"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"", "city"}));
}

TEST(SuggestAttributesTest, SynonymNeedsTheAttributeToExist) {
  std::vector<std::string> got = SuggestAttributes({"Phone"}, {{"email", AttributeType::kEmail, true}});
  EXPECT_EQ(got, (std::vector<std::string>{""}));
}

// Spreadsheets write no-break spaces (U+00A0), figure and narrow spaces, ideographic spaces and
// zero-width characters into header cells; they separate words as an ASCII space does.
TEST(NormalizeColumnNameTest, UnicodeWhiteSpaceAndInvisibleCharactersSeparateLikeASpace) {
  EXPECT_EQ(NormalizeColumnName("first\u00A0name"), "firstname");
  EXPECT_EQ(NormalizeColumnName("First Name\u00A0"), "firstname");
  EXPECT_EQ(NormalizeColumnName("\u2007First\u202FName\u3000"), "firstname");
  EXPECT_EQ(NormalizeColumnName("\u00A0\t First \r\n Name\u2028"), "firstname");
  EXPECT_EQ(NormalizeColumnName("first\u200Bname"), "firstname");  // zero-width space
  EXPECT_EQ(NormalizeColumnName("\uFEFF\uFEFFemail"), "email");    // a BOM the reader did not skip
  EXPECT_EQ(NormalizeColumnName("e\u00ADmail\u200D"), "email");    // soft hyphen, zero-width joiner
}

TEST(NormalizeColumnNameTest, PunctuationQuotesAndDashesSeparateLikeASpace) {
  EXPECT_EQ(NormalizeColumnName("\"Email\""), "email");
  EXPECT_EQ(NormalizeColumnName("\u201CFirst Name\u201D"), "firstname");  // curly quotes
  EXPECT_EQ(NormalizeColumnName("'city'"), "city");
  EXPECT_EQ(NormalizeColumnName("E\u2013mail"), "email");  // en dash
  EXPECT_EQ(NormalizeColumnName("E\u2010mail"), "email");  // hyphen
  EXPECT_EQ(NormalizeColumnName("Email*"), "email");       // a template's "required" mark
  EXPECT_EQ(NormalizeColumnName("Phone #"), "phone");
  EXPECT_EQ(NormalizeColumnName("Mobile No.:"), "mobileno");
  EXPECT_EQ(NormalizeColumnName("customer/id"), "customerid");
  EXPECT_EQ(NormalizeColumnName("(City)"), "city");
}

TEST(NormalizeColumnNameTest, FullWidthAndAccentedLatinLettersFoldToAscii) {
  EXPECT_EQ(NormalizeColumnName("\uFF25\uFF4D\uFF41\uFF49\uFF4C"), "email");  // full-width "Email"
  EXPECT_EQ(NormalizeColumnName("\uFF26\uFF49\uFF52\uFF53\uFF54\uFF3F\uFF2E\uFF41\uFF4D\uFF45"), "firstname");
  EXPECT_EQ(NormalizeColumnName("\u00C9-mail"), "email");   // precomposed E-acute
  EXPECT_EQ(NormalizeColumnName("E\u0301-mail"), "email");  // E + combining acute
  EXPECT_EQ(NormalizeColumnName("T\u00E9l\u00E9phone"), "telephone");
  EXPECT_EQ(NormalizeColumnName("Stra\u00DFe"), "strasse");
  EXPECT_EQ(NormalizeColumnName("STRASSE"), "strasse");
  EXPECT_EQ(NormalizeColumnName("\u0141\u00F3d\u017A"), "lodz");
  EXPECT_EQ(NormalizeColumnName("\u0152uvre"), "oeuvre");
  EXPECT_EQ(NormalizeColumnName("\u0130stanbul"), "istanbul");
}

TEST(NormalizeColumnNameTest, OtherScriptsAreKeptAsTheyAre) {
  EXPECT_EQ(NormalizeColumnName("\u0418\u043C\u044F"), "\u0418\u043C\u044F");  // Cyrillic: never an attribute name
  EXPECT_EQ(NormalizeColumnName("\u540D\u524D 2"), "\u540D\u524D2");
  const std::string not_utf8 = std::string("\xFF") + "ab";
  EXPECT_EQ(NormalizeColumnName(not_utf8), not_utf8);  // a byte that is not UTF-8 stays
  EXPECT_EQ(NormalizeColumnName(""), "");
  EXPECT_EQ(NormalizeColumnName("\u00A0 - "), "");
}

TEST(TrimColumnNameTest, TrimsUnicodeWhiteSpaceAndInvisibleCharacters) {
  EXPECT_EQ(TrimColumnName("  Email\t"), "Email");
  EXPECT_EQ(TrimColumnName("\u00A0Email\u00A0"), "Email");
  EXPECT_EQ(TrimColumnName("\uFEFF\u200BFirst\u00A0Name\u3000"), "First\u00A0Name");  // inner ones stay
  EXPECT_EQ(TrimColumnName("\u00A0\u2007"), "");
  EXPECT_EQ(TrimColumnName("\"Email\""), "\"Email\"");
}

TEST(SpacedColumnNameTest, WritesWhiteSpaceAsOneSpaceAndDropsInvisibleCharacters) {
  EXPECT_EQ(SpacedColumnName("First\u00A0\u00A0Name\u200B"), "First Name");
  EXPECT_EQ(SpacedColumnName("\u3000First\tName "), "First Name");
  EXPECT_EQ(SpacedColumnName("E\u200B-mail"), "E-mail");
  EXPECT_EQ(SpacedColumnName("Customer  ID"), "Customer ID");
  EXPECT_EQ(SpacedColumnName("\"City\""), "\"City\"");  // quotes are shown: kept
}

TEST(SuggestAttributesTest, HeaderWithNoBreakSpacesMatches) {
  std::vector<std::string> got =
      SuggestAttributes({"Customer\u00A0ID", "first\u00A0name", "City\u00A0", "\u00A0E-mail\u00A0"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"customer_id", "first_name", "city", "email"}));
}

TEST(SuggestAttributesTest, CommonSpellingsOfEmailAndMobileMatchTheSystemAttributes) {
  const std::vector<std::string> emails = {"E-mail",      "e_mail",    "EMAIL", "Email Address", "E-mail address",
                                           "Email-ID",    "Mail ID",   "Mail",  "Emails",        "E\u2011mail",
                                           "\u00C9-mail", "\"Email\"", "Email*"};
  for (const std::string& column : emails) {
    EXPECT_EQ(SuggestAttributes({column}, Schema()), (std::vector<std::string>{"email"})) << column;
  }
  const std::vector<std::string> mobiles = {"Mobile",
                                            "Mobile number",
                                            "Mobile No.",
                                            "Mob No",
                                            "Mob. No.",
                                            "Phone",
                                            "Phone Number",
                                            "Phone No",
                                            "Ph No",
                                            "Telephone",
                                            "Telephone Number",
                                            "Tel.",
                                            "Tel No",
                                            "Cell",
                                            "Cell Phone",
                                            "Cellphone Number",
                                            "Cell No",
                                            "Contact Number",
                                            "Contact No",
                                            "WhatsApp",
                                            "WhatsApp No",
                                            "Mobile Phone Number",
                                            "Phone #",
                                            "MSISDN"};
  for (const std::string& column : mobiles) {
    EXPECT_EQ(SuggestAttributes({column}, Schema()), (std::vector<std::string>{"mobile"})) << column;
  }
}

// StartImport refuses a column whose name the header holds twice: suggesting it would hand the
// client a mapping it cannot start.
TEST(SuggestAttributesTest, ColumnNamedTwiceInTheHeaderIsNotSuggested) {
  EXPECT_EQ(SuggestAttributes({"Email", "City", "Email"}, Schema()), (std::vector<std::string>{"", "city", ""}));
  EXPECT_EQ(SuggestAttributes({"Email", " Email\u00A0"}, Schema()), (std::vector<std::string>{"", ""}));
  // Another column may still take the attribute.
  EXPECT_EQ(SuggestAttributes({"Email", "Email", "Mail"}, Schema()), (std::vector<std::string>{"", "", "email"}));
  // Names that differ but normalise alike are different columns: one takes the attribute.
  EXPECT_EQ(SuggestAttributes({"First Name", "FIRST-NAME"}, Schema()), (std::vector<std::string>{"first_name", ""}));
}

// A tenant may have both "first_name" and "firstname": each column goes to the attribute it
// spells, whatever the order of the schema.
TEST(SuggestAttributesTest, AttributeSpelledExactlyWinsOverOneNormalisedAlike) {
  std::vector<AttributeInfo> schema = {{"first_name", AttributeType::kText, false},
                                       {"firstname", AttributeType::kText, false},
                                       {"customer_id", AttributeType::kText, true}};
  EXPECT_EQ(SuggestAttributes({"firstname", "first_name"}, schema),
            (std::vector<std::string>{"firstname", "first_name"}));
  EXPECT_EQ(SuggestAttributes({"FIRSTNAME", "First Name"}, schema),
            (std::vector<std::string>{"firstname", "first_name"}));
}

TEST(SuggestAttributesTest, EmptyHeaderCellsAreNotSuggested) {
  EXPECT_EQ(SuggestAttributes({"", "\u00A0", "-", "City"}, Schema()), (std::vector<std::string>{"", "", "", "city"}));
}

// A tenant names an attribute "fname" and shows it as "First Name": a file's "First Name" column
// holds it.
TEST(SuggestAttributesTest, DisplayNameMatchesNormalisedLikeAColumnName) {
  std::vector<AttributeInfo> schema = {{"customer_id", AttributeType::kText, true, "Customer ID"},
                                       {"fname", AttributeType::kText, false, "First Name"},
                                       {"dob", AttributeType::kDate, false, "Date of birth"},
                                       {"city_ru", AttributeType::kText, false, "\u0413\u043E\u0440\u043E\u0434"}};
  EXPECT_EQ(
      SuggestAttributes({"Customer ID", "first\u00A0name", "DATE-OF-BIRTH", "\u0413\u043E\u0440\u043E\u0434"}, schema),
      (std::vector<std::string>{"customer_id", "fname", "dob", "city_ru"}));
  // The attribute's own name still matches, and wins over the display name in another column.
  EXPECT_EQ(SuggestAttributes({"First Name", "FName"}, schema), (std::vector<std::string>{"", "fname"}));
  // No display name (or one of separators only) matches nothing.
  EXPECT_EQ(
      SuggestAttributes({"", "-"}, {{"a", AttributeType::kText, false, ""}, {"b", AttributeType::kText, false, "-"}}),
      (std::vector<std::string>{"", ""}));
}

// A display name is free text, a name is unique: a column that reads as an attribute's name gets
// that attribute, and never one whose display name reads the same, not even when the name's
// attribute went to another column.
TEST(SuggestAttributesTest, AttributeNameWinsOverAnotherAttributesDisplayName) {
  std::vector<AttributeInfo> schema = {{"fname", AttributeType::kText, false, "First Name"},
                                       {"first_name", AttributeType::kText, false, "first_name"},
                                       {"customer_id", AttributeType::kText, true, "customer_id"}};
  EXPECT_EQ(SuggestAttributes({"First Name"}, schema), (std::vector<std::string>{"first_name"}));
  EXPECT_EQ(SuggestAttributes({"first_name", "First Name"}, schema), (std::vector<std::string>{"first_name", ""}));
  EXPECT_EQ(SuggestAttributes({"fname", "First Name"}, schema), (std::vector<std::string>{"fname", "first_name"}));
}

// Two display names that read alike say nothing about which attribute the column holds.
TEST(SuggestAttributesTest, DisplayNameSharedByTwoAttributesIsNotSuggested) {
  std::vector<AttributeInfo> schema = {{"fname", AttributeType::kText, false, "First Name"},
                                       {"given_name", AttributeType::kText, false, "first-name"},
                                       {"town", AttributeType::kText, false, "City"},
                                       {"customer_id", AttributeType::kText, true, "customer_id"}};
  EXPECT_EQ(SuggestAttributes({"First Name", "City"}, schema), (std::vector<std::string>{"", "town"}));
  // The names still match.
  EXPECT_EQ(SuggestAttributes({"First Name", "Given Name", "F-Name"}, schema),
            (std::vector<std::string>{"", "given_name", "fname"}));
}

// The tenant's own display name says more than a built-in synonym: "Phone" is the attribute the
// tenant shows as "Phone", not mobile.
TEST(SuggestAttributesTest, DisplayNameWinsOverASynonym) {
  std::vector<AttributeInfo> schema = Schema();
  schema.push_back({"landline", AttributeType::kText, false, "Phone"});
  EXPECT_EQ(SuggestAttributes({"Phone", "Mobile"}, schema), (std::vector<std::string>{"landline", "mobile"}));
  EXPECT_EQ(SuggestAttributes({"Phone"}, Schema()), (std::vector<std::string>{"mobile"}));
}

AttributeType Infer(std::vector<std::string_view> values, ValueOptions options = {}) {
  TypeInferrer inferrer(std::move(options));
  for (auto v : values) inferrer.Add(v);
  return inferrer.Result();
}

TEST(TypeInferrerTest, PicksTheFirstTypeAcceptingEverySample) {
  EXPECT_EQ(Infer({"1", "42", "-7"}), AttributeType::kInteger);
  EXPECT_EQ(Infer({"1", "4.5", ""}), AttributeType::kDecimal);
  EXPECT_EQ(Infer({"yes", "no", "TRUE"}), AttributeType::kBoolean);
  EXPECT_EQ(Infer({"2024-01-31", "1999/2/3"}), AttributeType::kDate);
  EXPECT_EQ(Infer({"2024-01-31", "2024-01-31T10:00:00Z"}), AttributeType::kDateTime);
  EXPECT_EQ(Infer({"a@example.com", "B@Example.org"}), AttributeType::kEmail);
  EXPECT_EQ(Infer({"+91 98765 43210", "+1 (415) 555-0100"}), AttributeType::kMobile);
  EXPECT_EQ(Infer({"Pune", "42"}), AttributeType::kText);
}

TEST(TypeInferrerTest, BlankSamplesAreIgnoredAndNoSampleMeansText) {
  EXPECT_EQ(Infer({}), AttributeType::kText);
  EXPECT_EQ(Infer({"", "  "}), AttributeType::kText);
  EXPECT_EQ(Infer({"", "12", " "}), AttributeType::kInteger);
}

// Read as an INTEGER, "0123" is 123: zip codes, zero-padded ids and phone numbers lose their zeros.
TEST(TypeInferrerTest, NumbersWrittenWithLeadingZerosAreNotNumbers) {
  EXPECT_EQ(Infer({"0123", "4567"}), AttributeType::kText);
  EXPECT_EQ(Infer({"12", "007"}), AttributeType::kText);
  EXPECT_EQ(Infer({"1.5", "00.5"}), AttributeType::kText);
  EXPECT_EQ(Infer({"-012"}), AttributeType::kText);
  EXPECT_EQ(Infer({" 0123 ", "5"}), AttributeType::kText);
  EXPECT_EQ(Infer({"\u00A001234", "98765"}), AttributeType::kText);  // trimmed as values are, any space
  EXPECT_EQ(Infer({"42\u00A0", "\u202F7"}), AttributeType::kInteger);
  EXPECT_EQ(Infer({"0123.5"}), AttributeType::kText);
  // National phone numbers with their trunk prefix: MOBILE reads them as the import would.
  EXPECT_EQ(Infer({"09876543210", "09123456789"}), AttributeType::kMobile);
  // A lone zero, or one before the point, is a number.
  EXPECT_EQ(Infer({"0", "10", "-0"}), AttributeType::kInteger);
  EXPECT_EQ(Infer({"0.5", "-0.25", "0"}), AttributeType::kDecimal);
}

// Codes of 5 to 9 digits written with a hyphen pass for national phone numbers once a country code
// is put in front (12345-6789 -> +91123456789), whichever the tenant's; they are no phone numbers.
TEST(TypeInferrerTest, HyphenatedDigitCodesAreNotMobile) {
  for (std::string country_code : {"91", "1", "44", "358"}) {
    ValueOptions options;
    options.default_country_code = country_code;
    EXPECT_EQ(Infer({"12345-6789", "98052-1234"}, options), AttributeType::kText) << country_code;  // US ZIP+4
    EXPECT_EQ(Infer({"02134-1234", "98052-1234"}, options), AttributeType::kText) << country_code;
    EXPECT_EQ(Infer({"123-45-6789", "987-65-4321"}, options), AttributeType::kText) << country_code;  // SSN
    EXPECT_EQ(Infer({"01310-100", "20040-020"}, options), AttributeType::kText) << country_code;      // Brazil CEP
    EXPECT_EQ(Infer({"100-0001", "150-0002"}, options), AttributeType::kText) << country_code;        // Japan postal
    EXPECT_EQ(Infer({"0123456", "0765432"}, options), AttributeType::kText) << country_code;          // zero-padded ids
    // The import still takes such a value for a column mapped to a MOBILE attribute: the rule is
    // the inference's only.
    EXPECT_TRUE(NormalizeValue(AttributeType::kMobile, "12345-6789", options).ok()) << country_code;
  }
}

// Phone numbers as people write them: with their country code, or with at least 10 digits.
TEST(TypeInferrerTest, PhoneNumbersAsWrittenAreMobile) {
  for (std::string country_code : {"91", "1", "44"}) {
    ValueOptions options;
    options.default_country_code = country_code;
    EXPECT_EQ(Infer({"98765 43210", "+91 98765-43210", "(415) 555-0100", "9876543210"}, options),
              AttributeType::kMobile)
        << country_code;
    EXPECT_EQ(Infer({"415-555-0100", "415.555.0100", "1-415-555-0100"}, options), AttributeType::kMobile)
        << country_code;
    EXPECT_EQ(Infer({"020 7946 0958", "07700 900123", "06 12 34 56 78"}, options), AttributeType::kMobile)
        << country_code;
    EXPECT_EQ(Infer({"0044 20 7946 0958", "+65 9123 4567", "+34 612 345 678"}, options), AttributeType::kMobile)
        << country_code;
  }
}

// A plain E.164 number is an integer too, and INTEGER is tried first: a leading '+' rules numbers
// out as a leading zero does.
TEST(TypeInferrerTest, PlainE164NumbersAreMobile) {
  for (std::string country_code : {"91", "1", "44"}) {
    ValueOptions options;
    options.default_country_code = country_code;
    EXPECT_EQ(Infer({"+919876543210", "+14155550100"}, options), AttributeType::kMobile) << country_code;
    EXPECT_EQ(Infer({"+919876543210", "9876543210"}, options), AttributeType::kMobile) << country_code;
  }
  EXPECT_EQ(Infer({"+5", "-3", "+12"}), AttributeType::kInteger);  // signed numbers, too short for a phone
  EXPECT_EQ(Infer({"+1.5", "2"}), AttributeType::kDecimal);
  EXPECT_EQ(Infer({"5", "-12"}), AttributeType::kInteger);
}

// Checked and already right: pinned so that they stay so.
TEST(TypeInferrerTest, SpreadsheetColumnsOfOtherShapes) {
  EXPECT_EQ(Infer({"TRUE", "false", "yes", "no", "Y", "n"}), AttributeType::kBoolean);
  EXPECT_EQ(Infer({"1", "0", "yes"}), AttributeType::kBoolean);
  EXPECT_EQ(Infer({"2024-01-31", "31/01/2024"}), AttributeType::kText);  // mixed date formats
  EXPECT_EQ(Infer({"4,5", "3,25"}), AttributeType::kText);               // decimal comma
  EXPECT_EQ(Infer({"1,000", "25"}), AttributeType::kText);               // thousands separator
  EXPECT_EQ(Infer({"9223372036854775807", "1"}), AttributeType::kInteger);
  EXPECT_EQ(Infer({"9223372036854775808", "1"}), AttributeType::kText);  // above int64
  EXPECT_EQ(Infer({"", "\t", "5", "\r\n"}), AttributeType::kInteger);
}

}  // namespace
}  // namespace contacts
