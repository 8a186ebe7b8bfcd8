-- Why: undoes 1000_chatbot_conversation_types.sql (shared enums and validation helpers of the chatbot/conversation domains).
drop function private.channel_list_is_valid(public.channel_type[]);
drop function private.phrase_list_is_valid(text[]);
drop function private.match_phrase(text, text[], text[]);
drop function private.normalize_phrases(text[]);
drop function private.normalize_phrase(text);
drop type public.hitl_escalation_reason;
drop type public.reaction_type;
drop type public.message_sender_type;
drop type public.conversation_status;
drop type public.channel_type;
