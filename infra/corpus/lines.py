"""Sentence bank for the synthetic dialogues, one list per conversational genre.

Lines are short, plain English that flite pronounces well and pocketsphinx can
partly transcribe: no digits, abbreviations or unusual punctuation.  Scenes draw
from them without replacement, so a bank must hold more lines than a scene needs.
"""

from __future__ import annotations

# AMI scenario meetings are about designing a remote control.
MEETING = [
    "Okay, let's start with the agenda for today.",
    "I think the budget is the main thing we need to agree on.",
    "The remote should be simple enough for older people to use.",
    "Our research shows that users lose their remote all the time.",
    "What if we add a button that makes it beep when you can't find it?",
    "That would push the price up by a few euros.",
    "We could use a rubber case instead of hard plastic.",
    "I like the idea of a curved shape that fits in the hand.",
    "Let's keep the number of buttons as small as possible.",
    "The marketing team wants something that looks trendy.",
    "Young people said they would pay more for a fancy design.",
    "Can we get the speech recognition chip within our budget?",
    "I'm not sure the battery will last long enough.",
    "A solar panel on the back could solve that problem.",
    "Let me show you the drawing I made yesterday.",
    "The company colours should be on the front somewhere.",
    "We still have to decide between a scroll wheel and push buttons.",
    "I would go for the scroll wheel, it feels more modern.",
    "Shall we vote on it, or do we need more information first?",
    "The production cost has to stay under twelve and a half euros.",
    "Maybe we should drop the teletext button, nobody uses it.",
    "I'll write that down in the minutes.",
    "Does anyone have a problem with the yellow colour?",
    "The evaluation criteria should come from the user study.",
    "We have about ten minutes left before the next meeting.",
    "Let's go back to the functional design for a moment.",
    "The power button should be bigger than all the others.",
    "I can send everyone the report after lunch.",
    "So the main decision is the shape and the material.",
    "Good, then we all agree on the basic concept.",
]

# Friends-MMC is sitcom dialogue: quick, informal, often teasing.
SITCOM = [
    "Okay, who ate the last piece of cheesecake?",
    "I swear it was like that when I got here.",
    "You guys, I have the most amazing news.",
    "Could this day get any longer?",
    "We were on a break, and everybody knows it.",
    "Why is there a chicken in the bathroom?",
    "I just think you should call her back.",
    "Oh please, you always say that.",
    "Wait, are you wearing my sweater right now?",
    "That is the worst idea I have ever heard.",
    "So, how was the date last night?",
    "He talked about his mother for two hours.",
    "I'm going to the coffee house, does anyone want anything?",
    "You can't just move the couch without asking.",
    "It's not a big deal, it's just a little party.",
    "I told my boss I was sick, and then I saw him at the movies.",
    "Honestly, I have no idea what you're talking about.",
    "Fine, but you're paying for dinner this time.",
    "Did you really think I wouldn't notice?",
    "That's so sweet, I might actually cry.",
    "Nobody touches the thermostat, I mean it.",
    "Why does this always happen to me?",
    "I learned a new song on the guitar, want to hear it?",
    "We need a bigger apartment, seriously.",
    "I can explain, it's really not what it looks like.",
    "Let's just order pizza and watch a movie.",
    "She said yes! Can you believe it?",
    "Okay, nobody panic, but I lost the ring.",
]

# VoxCeleb2 clips are interviews: an interviewer asks, the celebrity answers.
QUESTIONS = [
    "So tell me, how did you get started in this business?",
    "What was the hardest part of making this film?",
    "Do you remember the first time you were on stage?",
    "How do you prepare for a role like that?",
    "What do you do when you're not working?",
    "Was there ever a moment when you wanted to quit?",
    "Who has been the biggest influence on your career?",
    "What can fans expect from your next project?",
    "How does it feel to be back in your home town?",
    "What advice would you give to someone starting out?",
    "Is it true that you did all your own stunts?",
    "How did your family react to the news?",
]
ANSWERS = [
    "Honestly, it started almost by accident when I was a teenager.",
    "The long nights were tough, but the team made it worth it.",
    "I was terrified, my hands were shaking the whole time.",
    "I read everything I can find and I spend a lot of time alone.",
    "I love cooking for my friends, it really calms me down.",
    "Of course, there were days when nothing seemed to work.",
    "My grandmother, without a doubt, she believed in me from day one.",
    "It's a very different story, and I think people will be surprised.",
    "It feels wonderful, I still know every street around here.",
    "Just keep going, and don't listen to the people who say no.",
    "Most of them, yes, although my knees would like a word with me.",
    "They were thrilled, my father called everyone he knew.",
    "I think you learn the most from the projects that go wrong.",
    "We shot the whole thing in about six weeks, which is very fast.",
    "The director gave us a lot of freedom, and that really helped.",
    "I try not to read the reviews, good or bad.",
]

# YouTube videos here are podcasts and panel discussions.
PODCAST = [
    "Welcome back to the show, today we have a great panel.",
    "Let's talk about the new phone that came out this week.",
    "I've been using it for a few days and the battery is amazing.",
    "The camera is better, but I don't think it's worth the price.",
    "A lot of our listeners asked about working from home.",
    "For me the biggest change was not having a commute.",
    "I actually miss the office a little bit, to be honest.",
    "You lose the small conversations by the coffee machine.",
    "Let's move on to the listener questions.",
    "Someone asked how we plan each episode.",
    "We write a rough outline and then we just talk.",
    "Do you think electric cars will replace petrol cars soon?",
    "In cities, probably, but the countryside will take longer.",
    "Charging stations are the real problem right now.",
    "I drove across the country last summer and it was fine.",
    "That's a good point, the network is growing quickly.",
    "Before we wrap up, what are you reading at the moment?",
    "I'm halfway through a great book about the history of maps.",
    "I've been listening to audio books on my morning walk.",
    "Thanks everyone for listening, see you next week.",
    "Let's take a short break and come back to that.",
    "I completely disagree, and here is why.",
    "The data really does not support that claim.",
    "Okay, I think we can both agree on that part.",
]

# AVA-ActiveSpeaker comes from films; these are short dramatic exchanges.
FILM = [
    "We have to leave tonight, before they find us.",
    "I'm not going anywhere without my brother.",
    "Did you hear that? Someone is outside.",
    "Stay calm and let me do the talking.",
    "You promised me this would be the last time.",
    "The train leaves at midnight, we can still make it.",
    "I never wanted any of this to happen.",
    "Where did you put the letter?",
    "It's in the drawer, under the old photographs.",
    "Listen to me, nobody can know about this.",
    "You should have told me the truth from the start.",
    "I was trying to protect you.",
    "The storm is getting worse, we should go inside.",
    "How long have you known about the money?",
    "Since the night of the accident.",
    "Then we go to the police first thing tomorrow.",
    "Please, just give me one more day.",
    "Open the door slowly, and don't make a sound.",
    "There's a light on in the old house.",
    "I can't believe you came back after all these years.",
    "Everything is different now, the town has changed.",
    "Tell me what happened that summer.",
]

# Short overlapping responses that make conversations sound natural (and add overlap).
BACKCHANNELS = [
    "Yeah.",
    "Right.",
    "Exactly.",
    "Okay.",
    "Sure.",
    "Oh really?",
    "Yes, yes.",
    "True.",
    "I see.",
    "Absolutely.",
]

GENRES = {
    "meeting": MEETING,
    "sitcom": SITCOM,
    "podcast": PODCAST,
    "film": FILM,
    "interview": QUESTIONS + ANSWERS,
}
